"""`fmlab`: run the failure modes, and look at a lab database.

Exit codes: 0 all invariants hold, 1 an invariant is violated, 2 the input was wrong (one
line on stderr, nothing on disk changed), 141 the reader of the output went away.
"""

import argparse
import json
import os
import random
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from runtime import cli_explore as explorer
from runtime import cli_intents as intent_commands
from runtime import cli_tickets as ticket_commands
from runtime import cli_worker as worker_commands
from runtime import invariants, timeline
from runtime.errors import UsageError
from runtime.queue import Queue, validated_payload
from runtime.sim import SCHEDULERS
from runtime.stores import DB_HELP, database, open_store, time_authority
from runtime.tables import table

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a command whose reader went away."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _whole(name: str, least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number, `least` or more (and `most` or less), named in its
    error message."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number, got {text!r}"
            ) from None
        if number < least:
            floor = "must not be negative" if least == 0 else f"must be at least {least}"
            raise argparse.ArgumentTypeError(f"{name} {floor}, got {number}")
        if most is not None and number > most:
            raise argparse.ArgumentTypeError(f"{name} must be at most {most}, got {number}")
        return number

    return parse


_seed = _whole("seed", 0)
_count = _whole("count", 1)
_port = _whole("port", 0, 65535)


def _positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seconds must be a number, got {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be above 0, got {text}")
    return seconds


def _world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        choices=("baseline", "guarded"),
        default="baseline",
        help="baseline: GUARDED with this FM's lever off (default); guarded: all on",
    )
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="random")
    parser.add_argument(
        "--jobs", type=_count, default=None, help="jobs per run (the FM's world: 3 for most)"
    )
    parser.add_argument(
        "--workers", type=_count, default=None, help="workers per run (the FM's world: 2 for most)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fmlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="list the failure modes")

    show = commands.add_parser("show", help="print a failure mode's spec")
    show.add_argument("fm")

    run = commands.add_parser("run", help="run a failure mode and print its timeline")
    run.add_argument("fm")
    run.add_argument(
        "--policy",
        choices=("baseline", "guarded"),
        default="baseline",
        help="baseline: GUARDED with this FM's lever off (default); guarded: all on",
    )
    run.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="run seeded variation N instead of the scripted schedule",
    )
    run.add_argument("--format", choices=timeline.FORMATS, default="text")
    run.add_argument(
        "--db", type=Path, default=None, help="also save the run's database to this new file"
    )

    explore = commands.add_parser("explore", help="run many seeds, shrink the first failure")
    explore.add_argument("fm")
    _world_options(explore)
    explore.add_argument("--seeds", type=_count, default=1000, help="how many seeds (1000)")
    explore.add_argument("--seed-start", type=_seed, default=0, help="the first seed (0)")
    explore.add_argument("--processes", type=_count, default=1, help="processes to use (1)")
    explore.add_argument("--save-tape", type=Path, default=None, help="write the shrunk tape")
    explore.add_argument("--format", choices=timeline.FORMATS, default="text")

    replay = commands.add_parser("replay", help="replay one explored run, from its seed or tape")
    replay.add_argument("fm")
    _world_options(replay)
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--seed", type=_seed, default=None)
    source.add_argument("--tape", type=Path, default=None, help="a tape file from --save-tape")
    replay.add_argument("--format", choices=timeline.FORMATS, default="text")

    determinism = commands.add_parser(
        "determinism", help="run seeds twice; report the first step where two runs differ"
    )
    determinism.add_argument("fm")
    _world_options(determinism)
    determinism.add_argument("--seeds", type=_count, default=1000)

    check = commands.add_parser("check", help="check every invariant over a lab database")
    check.add_argument("--db", type=database, default=Path("lab.db"), help=DB_HELP)
    check.add_argument(
        "--final",
        action="store_true",
        help="the run is over: also require every job SUCCEEDED or DEAD",
    )

    show_timeline = commands.add_parser("timeline", help="print a lab database's history")
    show_timeline.add_argument("--db", type=database, default=Path("lab.db"), help=DB_HELP)
    show_timeline.add_argument("--format", choices=timeline.FORMATS, default="text")
    show_timeline.set_defaults(final=False)  # a timeline may be of a run still going

    submit = commands.add_parser("submit", help="submit a job to a lab database")
    submit.add_argument("kind")
    submit.add_argument("payload", help="the job's payload, a JSON object")
    submit.add_argument("--db", type=database, default=Path("lab.db"), help=DB_HELP)
    submit.add_argument("--key", default=None, help="idempotency key")
    intent_commands.add_commands(commands, _count, _seed)
    ticket_commands.add_commands(commands, _port)
    worker_commands.add_commands(commands, _count, _positive_seconds)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _dispatch(args)
    except UsageError as error:
        print(f"fmlab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as error:
        print(f"fmlab: error: database unreadable: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader stopped reading (`fmlab explore ... | head`): stop quietly, as a
        # command killed by SIGPIPE would, and keep the interpreter's last flush silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _dispatch(args: argparse.Namespace) -> int:
    from failure_modes import catalog

    if args.command == "list":
        rows = [
            (fm.meta.id, fm.meta.lever, ",".join(fm.meta.invariants), fm.meta.title)
            for fm in catalog.discover()
        ]
        print(table(("id", "lever", "invariants", "title"), rows), end="")
        return EXIT_OK
    if args.command == "show":
        fm = catalog.find(args.fm)
        spec = fm.folder / "spec.md"
        if not spec.is_file():
            raise UsageError(f"{fm.meta.id} has no spec.md yet")
        print(spec.read_text(), end="")
        return EXIT_OK
    if args.command == "run":
        fm = catalog.find(args.fm)
        if args.db is not None and args.db.exists():
            raise UsageError(f"{args.db}: already exists; give a new file for the run")
        result = fm.run(fm.policies(args.policy), seed=args.seed)
        seed = "scripted schedule" if args.seed is None else f"seed {args.seed}"
        title = f"{fm.meta.id} {fm.meta.title} | policy {args.policy} | {seed}"
        print(timeline.render(result.events, result.violations, args.format, title=title), end="")
        if args.db is not None:
            result.save(args.db)
        return EXIT_VIOLATED if result.violations else EXIT_OK
    if args.command == "explore":
        return explorer.explore_command(catalog.find(args.fm), args)
    if args.command == "replay":
        return explorer.replay_command(args)
    if args.command == "determinism":
        return explorer.determinism_command(catalog.find(args.fm), args)
    if args.command in ("check", "timeline"):
        store = open_store(args.db, read_only=True)
        try:
            found = invariants.check(store, final=args.final)
            if args.command == "timeline":
                print(timeline.render(store.events(), found, args.format), end="")
                return EXIT_OK
            print(timeline.verdict(found))
            return EXIT_VIOLATED if found else EXIT_OK
        finally:
            store.close()
    if args.command in intent_commands.COMMANDS:
        return intent_commands.run(args)
    if args.command in ticket_commands.COMMANDS:
        return ticket_commands.run(args)
    if args.command in worker_commands.COMMANDS:
        return worker_commands.run(args)
    if args.command == "submit":
        try:
            payload = json.loads(args.payload)
        except json.JSONDecodeError as error:
            raise UsageError(f"payload is not JSON: {error}") from None
        validated_payload(args.kind, payload)
        store = open_store(args.db)
        try:
            queue = Queue(store, time_authority(store), random.Random(0))
            print(queue.submit(args.kind, payload, idempotency_key=args.key))
        finally:
            store.close()
        return EXIT_OK
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
