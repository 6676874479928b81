"""`make new-fm NAME=x`: copy failure_modes/template/ to the next FM_NNN_x folder.

The copy fails its own tests with a message saying what to write, and fails the catalog
test until its META names a lever and its invariants, so a new failure mode can never pass
empty. The index gains its row ("not explored yet"); `make index` measures it once written.
"""

import re
import shutil
import sys

from failure_modes import catalog, index

NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
TEMPLATE = catalog.ROOT / "template"


def scaffold(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(
            f"name {name!r} must be snake_case: a lowercase letter, then letters, digits or _"
        )
    numbers = [int(catalog.FOLDER.match(f.name).group(1)) for f in catalog.folders()]
    if any(catalog.FOLDER.match(f.name).group(2) == name for f in catalog.folders()):
        raise ValueError(f"a failure mode named {name!r} already exists")
    number = f"{max(numbers, default=0) + 1:03d}"
    target = catalog.ROOT / f"FM_{number}_{name}"
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_file():
            text = path.read_text()
            text = text.replace("FM_XXX", f"FM_{number}").replace("fmXXX", f"fm{number}")
            text = text.replace("{{name}}", name).replace("{{title}}", name.replace("_", " "))
            path.write_text(text)
        if "XXX" in path.name:
            path.rename(path.with_name(path.name.replace("XXX", number)))
    index.INDEX.write_text(index.with_row(catalog.load(target)))
    return target.name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m failure_modes.scaffold NAME", file=sys.stderr)
        return 2
    try:
        folder = scaffold(argv[0])
    except ValueError as error:
        print(f"new-fm: {error}", file=sys.stderr)
        return 2
    print(f"created failure_modes/{folder}/ and listed it in docs/failure_mode_index.md")
    print("next: write spec.md, scenario.py and both tests; `make test` fails until you do")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
