"""`fmlab record | status | recent | health | annotate | redrive | work`: the intent log's
commands over a lab database.

Read-only unless the command says it writes (record, annotate, redrive, work). Tables for
people, `--format json` for scripts; nothing but the answer on stdout. `--clock sim` runs
a command on the database's own simulated time (runtime.intents.system.database_time),
so a scripted session prints the same bytes twice.
"""

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runtime.clock import Clock, SimClock, SystemClock
from runtime.errors import UsageError
from runtime.intents import lifecycle, system
from runtime.intents.log import SYNC, annotate, get, record
from runtime.observe import clusters, severity
from runtime.observe.health import health
from runtime.queue import validated_payload
from runtime.store import Store
from runtime.stores import sqlite_file
from runtime.tables import table

WRITES = ("record", "annotate", "redrive", "work")
COMMANDS = (
    "record", "status", "recent", "health", "annotate", "redrive", "work", "clusters", "severity",
)  # fmt: skip


def add_commands(commands: Any, count: Any, whole: Any) -> None:
    """Add the intent log's subcommands to the `fmlab` parser."""

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        parser.add_argument("--db", type=sqlite_file, default=Path("lab.db"))
        parser.add_argument(
            "--clock",
            choices=("wall", "sim"),
            default="wall",
            help="wall: the real time; sim: the database's simulated time (scripted sessions)",
        )
        return parser

    rec = command("record", "record an intent and enqueue its projection and sync (writes)")
    rec.add_argument("type")
    rec.add_argument("payload", help="the intent's payload, a JSON object")
    for name, help in (("status", "every intent and where its sync stands"),
                       ("recent", "the newest intents, newest first")):  # fmt: skip
        parser = command(name, help)
        parser.add_argument("--format", choices=("text", "json"), default="text")
        if name == "recent":
            parser.add_argument("n", nargs="?", type=count, default=10)
    parser = command("health", "counts, dead letters, backlog, oldest failure")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    note = command("annotate", "append a note on an intent (or, with --event, an event)")
    note.add_argument("id", type=whole)
    note.add_argument("note")
    note.add_argument("--event", action="store_true", help="the id is an event's seq")
    note.add_argument("--author", default="operator")
    again = command("redrive", "give a dead intent's sync a fresh budget (writes)")
    again.add_argument("id", type=whole)
    again.add_argument("--reason", default="redriven by an operator")
    again.add_argument("--by", default="operator")
    for name, help in (
        ("clusters", "failures of one type bunched in one 10-minute window"),
        ("severity", "a level for every failure, cluster and type, with its reason"),
    ):
        derived = command(name, help)
        derived.add_argument(
            "--rebuild", action="store_true", help="recompute from the log and store (writes)"
        )
        derived.add_argument("--format", choices=("text", "json"), default="text")
    work = command("work", "run workers until nothing is left to do (writes)")
    work.add_argument("--workers", type=count, default=2)
    work.add_argument("--sync-fail-rate", type=_probability, default=0.0)
    work.add_argument(
        "--sync-latency", type=_seconds, default=0.0, help="seconds each sync call takes (sim)"
    )
    work.add_argument("--seed", type=whole, default=0)


def run(args: argparse.Namespace) -> int:
    if args.command == "record":  # bad input is refused before the file is touched
        args.payload = _payload(args.type, args.payload)
    writes = args.command in WRITES or getattr(args, "rebuild", False)
    store = Store.open(args.db, read_only=not writes)
    try:
        clock: Clock = (
            SimClock(start=system.database_time(store)) if args.clock == "sim" else SystemClock()
        )
        return _COMMANDS[args.command](store, clock, args)
    finally:
        store.close()


def _payload(type: str, text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"payload is not JSON: {error}") from None
    validated_payload(type, payload)
    return payload


def _record(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    print(record(system.queue(store, clock), args.type, args.payload))
    return 0


def _status(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    newest = args.n if args.command == "recent" else None
    rows = lifecycle.statuses(store, newest=newest)
    if args.format == "json":
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    header = ("intent", "type", "sync", "retries", "projected", "last error")
    body = [
        (r.id, r.type, r.sync, r.retry_count, "yes" if r.projected else "no", r.last_error or "-")
        for r in rows
    ]
    print(table(header, body), end="")
    return 0


def _health(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    report = health(store, clock.now())
    if args.format == "json":
        print(json.dumps(asdict(report), indent=2))
        return 0
    age = report.oldest_failure_age_s
    oldest = (
        "none"
        if report.oldest_failure_intent is None
        else f"intent {report.oldest_failure_intent}, failing for {age:.3f} s"
    )
    most = (
        "none"
        if report.most_retried_intent is None
        else f"intent {report.most_retried_intent}, {report.most_retries} retries"
    )
    backlog = ", ".join(f"{k} {n}" for k, n in report.backlog.items()) or "none"
    lines = [
        ("intents", str(report.intents)),
        *((f"  {state.lower()}", str(n)) for state, n in report.by_sync.items()),
        ("dead letters", str(report.dead_letters)),
        ("backlog", backlog),
        ("oldest unresolved failure", oldest),
        ("most retried", most),
    ]
    print(table(("health", ""), lines), end="")
    return 0


def _annotate(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    on = "event" if args.event else "intent"
    print(annotate(system.queue(store, clock), on, args.id, args.note, author=args.author))
    return 0


def _redrive(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    get(store, args.id)  # an unknown intent is a usage error
    job = store.one("SELECT id, state FROM jobs WHERE idempotency_key = ?", (f"{SYNC}-{args.id}",))
    if job is None or job["state"] != "DEAD":
        state = "missing" if job is None else job["state"]
        raise UsageError(f"intent {args.id}'s sync is not DEAD ({state}): nothing to redrive")
    system.queue(store, clock).redrive(job["id"], reason=args.reason, by=args.by)
    print(args.id)
    return 0


def _work(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    queue = system.queue(store, clock, fail_rate=args.sync_fail_rate, seed=args.seed)
    attempts = system.work(queue, args.workers, sync_latency_s=args.sync_latency)
    print(f"{attempts} attempt{'s' * (attempts != 1)} run; quiet at {clock.now():.3f}")
    return 0


def _derived(store: Store, clock: Clock, args: argparse.Namespace) -> int:
    """Show the stored clusters (or severities); with --rebuild, recompute them first. A
    stored view that no longer matches the log says so on its last line."""
    view = clusters if args.command == "clusters" else severity
    rows = view.rebuild(store, clock.now(), system.POLICIES) if args.rebuild else view.stored(store)
    if args.format == "json":
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    if args.command == "clusters":
        header: tuple[str, ...] = ("type", "from", "to", "failures", "first seq", "last seq")
        body = [
            (c.type, f"{c.window_start:.3f}", f"{c.window_end:.3f}", c.failures, c.first_seq,
             c.last_seq)
            for c in rows
        ]  # fmt: skip
    else:
        header = ("subject", "ref", "level", "reason")
        body = [(s.subject, s.ref, s.level, s.reason) for s in rows]
    print(table(header, body), end="")
    if args.rebuild:
        return 0
    covered = store.one(
        "SELECT json_extract(detail, '$.upto_seq') FROM events WHERE type = 'derived.rebuilt'"
        " AND json_extract(detail, '$.table') = ? ORDER BY seq DESC LIMIT 1",
        (view.TABLE,),
    )
    if covered is not None and rows != view.compute(store, covered[0]):
        print(f"wrong: this differs from what its own events give (INV_011); run {args.command}"
              " --rebuild")  # fmt: skip
    elif rows != view.compute(store):
        print(f"stale: the log has changed since the last rebuild; run {args.command} --rebuild")
    return 0


_COMMANDS = {
    "clusters": _derived,
    "severity": _derived,
    "record": _record,
    "status": _status,
    "recent": _status,
    "health": _health,
    "annotate": _annotate,
    "redrive": _redrive,
    "work": _work,
}


def _real(kind: str, within: Callable[[float], bool], bounds: str) -> Callable[[str], float]:
    """An argparse type: a number `within` its bounds, named by `kind` in its errors."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} is a number, got {text!r}") from None
        if not within(value):
            raise argparse.ArgumentTypeError(f"{kind} is {bounds}, got {text}")
        return value

    return parse


_probability = _real("a probability", lambda v: 0.0 <= v <= 1.0, "between 0 and 1")
_seconds = _real("a duration", lambda v: 0.0 <= v < float("inf"), "0 s or more")
