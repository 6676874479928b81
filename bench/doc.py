"""docs/benchmarks.md, written by the benchmarks: each owns one `## ` section and replaces it
whole, so the page never holds a figure that a run did not measure."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TITLE = "# Benchmarks"
INTRO = (
    "Every figure here is written by a benchmark, never typed: each section is replaced\n"
    "whole when its make target runs. The figures of one section are measured side by\n"
    "side, in one run on one machine, so compare ratios rather than absolute numbers\n"
    "across machines."
)


def with_section(document: str, heading: str, new: str) -> str:
    """`document` with its `heading` section (up to the next `## ` heading or the end)
    replaced by `new`, or `new` appended when it has none."""
    match = re.search(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", document, re.M | re.S)
    if match is None:
        return document.rstrip("\n") + "\n\n" + new
    following = "\n" if match.end() < len(document) else ""
    return document[: match.start()] + new + following + document[match.end() :]


def write(heading: str, new: str, path: Path = DOC) -> None:
    document = path.read_text() if path.exists() else f"{TITLE}\n\n{INTRO}\n"
    path.write_text(with_section(document, heading, new))
