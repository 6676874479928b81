"""A run's history, told three ways: a text table, a Mermaid sequence diagram, JSON.

All three are pure functions of the event log and the verdict, so the same seed gives the
same bytes. Faults the harness injected (`fault.*`) appear, marked, so a reader sees what
broke; the invariants never read them.
"""

import json
from collections.abc import Sequence

from runtime.invariants import Violation
from runtime.queue import REAPER
from runtime.store import Event

FORMATS = ("text", "mermaid", "json")
CLIENT = "client"
STORE = "store"


def render(
    events: Sequence[Event], violations: Sequence[Violation], fmt: str, *, title: str = ""
) -> str:
    if fmt == "text":
        return text(events, violations, title=title)
    if fmt == "mermaid":
        return mermaid(events, violations, title=title)
    if fmt == "json":
        return as_json(events, violations, title=title)
    raise ValueError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")


def verdict(violations: Sequence[Violation]) -> str:
    if not violations:
        return "VERDICT: every invariant holds"
    names = ", ".join(sorted({v.inv for v in violations}))
    lines = [f"VERDICT: violated {names}"]
    lines += [f"  {v}" for v in violations]
    return "\n".join(lines)


def text(events: Sequence[Event], violations: Sequence[Violation], *, title: str = "") -> str:
    width = max([len("actor"), *(len(_actor(e)) for e in events)])
    kinds = max([21, *(len(_mark(e) + e.type) for e in events)])
    header = (
        f"{'seq':>4}  {'t (s)':>8}  {'actor':<{width}} {'event':<{kinds}} {'job':>3} {'exec':>4}"
        "  detail"
    )
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for e in events:
        lines.append(
            f"{e.seq:>4}  {e.at:>8.3f}  {_actor(e):<{width}} {_mark(e) + e.type:<{kinds}} "
            f"{_id(e.job_id):>3} {_id(e.execution_id):>4}  {_detail(e)}".rstrip()
        )
    lines += ["", verdict(violations)]
    return "\n".join(lines) + "\n"


def mermaid(events: Sequence[Event], violations: Sequence[Violation], *, title: str = "") -> str:
    actors = [CLIENT]
    for e in events:
        actor = _actor(e)
        if actor not in actors:
            actors.append(actor)
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {title}")
    lines += [f"    participant {a}" for a in actors if a != REAPER]
    lines.append(f"    participant {STORE}")
    if REAPER in actors:
        lines.append(f"    participant {REAPER}")
    for e in events:
        actor = _actor(e)
        label = f"{e.seq} {e.type}"
        if e.job_id is not None:
            label += f" job {e.job_id}"
        move = _moves(e)
        if move:
            label += f" ({move})"
        if e.type.startswith("fault."):
            lines.append(
                f"    Note over {actor}: FAULT {e.type.removeprefix('fault.')} (seq {e.seq})"
            )
        else:
            lines.append(f"    {actor}->>{STORE}: {label}")
    for v in violations:
        lines.append(f"    Note over {STORE}: {v.inv} violated: {_plain(v.message)}")
    if not violations:
        lines.append(f"    Note over {STORE}: every invariant holds")
    return "\n".join(lines) + "\n"


def as_json(events: Sequence[Event], violations: Sequence[Violation], *, title: str = "") -> str:
    document = {
        "title": title,
        "events": [
            {
                "seq": e.seq,
                "at": e.at,
                "type": e.type,
                "job": e.job_id,
                "execution": e.execution_id,
                "worker": e.worker,
                "detail": e.detail,
            }
            for e in events
        ],
        "violations": [v.as_dict() for v in violations],
        "verdict": "violated" if violations else "holds",
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _plain(message: str) -> str:
    """Mermaid ends a statement at ';' and opens entities at '#'."""
    return message.replace(";", ",").replace("#", "no.")


def _actor(e: Event) -> str:
    return e.worker or CLIENT


def _mark(e: Event) -> str:
    return "!! " if e.type.startswith("fault.") else ""


def _id(value: int | None) -> str:
    return "-" if value is None else str(value)


def _moves(e: Event) -> str:
    parts = []
    for key, label in (("job_state", "job"), ("execution_state", "exec")):
        move = e.detail.get(key)
        if move:
            parts.append(f"{label} {move[0] or '∅'}→{move[1]}")
    return ", ".join(parts)


def _detail(e: Event) -> str:
    moves = _moves(e)
    parts = [moves] if moves else []
    for key, value in sorted(e.detail.items()):
        if key in ("job_state", "execution_state") or value in (None, [], ""):
            continue
        parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    return "  ".join(parts)
