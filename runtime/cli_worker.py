"""`fmlab worker`: a real worker process over a lab database (runtime.process).

The handlers are the intent log's and the tickets service's unless `--handlers
module:NAME` names a mapping of job kind to handler in an importable module (a torture
run's, a user's own). `--without LEVER` runs with one guard off, to show what a crash
torture catches without it. SIGTERM or SIGINT: finish the attempt in hand, then exit 0.
"""

import argparse
import importlib
import math
import signal
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime import process
from runtime.errors import UsageError
from runtime.intents.log import HANDLERS as INTENT_HANDLERS
from runtime.policies import GUARDED, LEVERS
from runtime.stores import DB_HELP, database, open_store
from runtime.tickets.projector import HANDLERS as TICKET_HANDLERS
from runtime.worker import Handler

COMMANDS = ("worker",)
DEFAULT_HANDLERS: Mapping[str, Handler] = {**INTENT_HANDLERS, **TICKET_HANDLERS}


def add_commands(commands: Any, count: Any, seconds: Any) -> None:
    worker = commands.add_parser("worker", help="run a worker process until SIGTERM (writes)")
    worker.add_argument("--db", type=database, default=Path("lab.db"), help=DB_HELP)
    worker.add_argument("--concurrency", type=count, default=1, help="worker threads (1)")
    worker.add_argument("--kinds", default=None, help="comma-separated job kinds to take")
    worker.add_argument("--handlers", default=None, help="module:NAME, a mapping kind -> handler")
    worker.add_argument("--lease-s", type=seconds, default=GUARDED.lease_s, help="lease length")
    worker.add_argument(
        "--without", choices=LEVERS, default=None, metavar="LEVER", help="turn one lever off"
    )
    worker.add_argument("--name", default="worker", help="names the threads: NAME.1, NAME.2, ...")
    worker.add_argument(
        "--batch", type=count, default=1, help="jobs a thread leases at once, run in turn (1)"
    )
    worker.add_argument(
        "--clock-skew-s",
        type=float,
        default=0.0,
        help="this machine's wall clock is off by this much (a second machine, for FM_010)",
    )


def run(args: argparse.Namespace) -> int:
    handlers = _handlers(args.handlers)
    kinds = None if args.kinds is None else tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds or ()) - set(handlers))
    if unknown:
        raise UsageError(f"no handler for job kinds {', '.join(unknown)}")
    open_store(args.db, create=False).close()  # a missing or foreign database is refused now
    policies = replace(GUARDED if args.without is None else GUARDED.without(args.without),
                       lease_s=args.lease_s)  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if not math.isfinite(args.clock_skew_s):
        raise UsageError(f"--clock-skew-s must be a number of seconds, got {args.clock_skew_s}")
    settings = process.Settings(
        args.db, handlers, policies, args.concurrency, kinds, args.name, 0, args.batch,
        args.clock_skew_s,
    )  # fmt: skip
    process.run(settings, stop)
    return 0


def _handlers(spec: str | None) -> Mapping[str, Handler]:
    if spec is None:
        return DEFAULT_HANDLERS
    module, _, name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module), name or "HANDLERS")
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot load handlers {spec!r}: {error}") from None
    if not isinstance(found, Mapping) or not found:
        raise UsageError(f"{spec!r} is not a mapping of job kind to handler")
    return found
