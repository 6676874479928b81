"""`fmlab serve | project | rebuild | reconcile`: the tickets service's commands over a lab
database.

`serve` runs the HTTP API on uvicorn, with a projector thread unless `--no-projector`
(then run `fmlab project` beside it, as its own process, which may be killed and started
again). The first line on stdout says where it listens, so a script that asked for port 0
learns the port. SIGTERM or SIGINT stops either one after the attempt in hand.
"""

import argparse
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime import process
from runtime.clock import SystemClock
from runtime.errors import UsageError
from runtime.store import Store
from runtime.stores import sqlite_file
from runtime.tickets import service, views

COMMANDS = ("serve", "project", "rebuild", "reconcile")


def add_commands(commands: Any, port: Any) -> None:
    """Add the tickets service's subcommands to the `fmlab` parser."""
    serve = commands.add_parser("serve", help="serve the tickets API over HTTP (writes)")
    serve.add_argument("--db", type=sqlite_file, default=Path("lab.db"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port, default=8000, help="0: any free port")
    serve.add_argument(
        "--no-projector", action="store_true", help="run no projector here (fmlab project does)"
    )
    project = commands.add_parser("project", help="run a tickets projector (writes)")
    project.add_argument("--db", type=sqlite_file, default=Path("lab.db"))
    project.add_argument(
        "--until-quiet", action="store_true", help="stop once no projection is ready"
    )
    rebuild = commands.add_parser("rebuild", help="rebuild the tickets read model (writes)")
    rebuild.add_argument("--db", type=sqlite_file, default=Path("lab.db"))
    reconcile = commands.add_parser(
        "reconcile", help="find damaged rows in the tickets read model (exit 1 if any; logs them)"
    )
    reconcile.add_argument("--db", type=sqlite_file, default=Path("lab.db"))


def run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    store = Store.open(args.db, create=False)
    try:
        if args.command == "rebuild":
            done = views.rebuild(store, SystemClock(), by="operator")
            print(
                f"rebuilt ticket_views: {_count(done.tickets, 'ticket')},"
                f" {done.taken_from_live} taken from live projections,"
                f" {_count(done.batches, 'batch', 'batches')}"
            )
            return 0
        if args.command == "reconcile":
            damaged = views.reconcile(store, SystemClock(), by="operator")
            off = views.counts_off(store)
            if not damaged and not off:
                print("the read model matches the write model (rows behind are lag, not damage)")
                return 0
            if damaged:
                print(f"damaged rows: tickets {', '.join(map(str, damaged))}")
            for status, (stored, counted) in off.items():
                print(f"status count {status}: {stored} stored, {counted} rows")
            print(f"run fmlab rebuild --db {args.db}")
            return 1
        if args.until_quiet:
            print(service.project_until_quiet(service.queue(store, SystemClock())))
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        process.run(service.projector(args.db), stop)
        return 0
    finally:
        store.close()


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.tickets.api import create_app

    class Server(uvicorn.Server):
        """uvicorn, but a SIGTERM or SIGINT ends it with exit 0 after its graceful shutdown
        (uvicorn raises the signal again once done, and the process dies of it)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the handlers are installed before the address is printed

    app = create_app(args.db, projector=not args.no_projector)
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    listener.listen(128)  # a client that connects before uvicorn accepts waits in the backlog
    server = Server(uvicorn.Config(app, log_level="warning", access_log=False))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, server.handle_exit)
    host, port = listener.getsockname()[:2]
    print(f"serving tickets on http://{host}:{port}", flush=True)
    server.run(sockets=[listener])
    return 0
