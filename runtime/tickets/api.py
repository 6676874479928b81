"""The tickets service over HTTP: commands go to the write model, reads to the read model.

`create_app(path)` builds the ASGI app over one lab database file; `fmlab serve` runs it
on uvicorn with a projector thread beside it. Commands answer with the ticket's new
version; reads answer from the read model, which may trail by up to the contract
(`READ_LAG_MS`): a ticket created a moment ago can be not found yet, and says so.

Every error a client can cause is a 4xx with a JSON body `{"error": "..."}`: 404 for a
ticket that does not exist (or is not in the read model yet), 409 for a command on a
closed ticket, 400 for a body that is not JSON, 422 for a body or a parameter that is not
what the schema says. A
database too busy to take the write is a 503 the client may retry; nothing is a 500.

Each request thread has its own connection to the file (a Store is one thread's), and
SQLite's WAL lets the readers read while a command or the projector writes.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime import process
from runtime.clock import Clock, SystemClock
from runtime.errors import StoreUnavailable, UsageError
from runtime.store import Store
from runtime.tickets import lag, model, service, views
from runtime.tickets.model import (
    MESSAGE_MAX,
    NOTE_MAX,
    SUBJECT_MAX,
    KeyReused,
    TicketClosed,
    UnknownTicket,
)

ID_MAX = 2**63 - 1
"""The largest id SQLite can hold: a larger one is not a ticket, and is refused as such."""
PAGE_MAX = 500


class Error(BaseModel):
    error: str


SAYS_SOMETHING = model.SAYS_SOMETHING
"""A text must hold a character that is not white space; the schema says so, so that a
client (or a fuzzer) that reads it knows "   " is refused, by the same rule the model
applies (runtime.tickets.model.WHITE_SPACE)."""


class NewTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX, pattern=SAYS_SOMETHING)
    message: str = Field(min_length=1, max_length=MESSAGE_MAX, pattern=SAYS_SOMETHING)


class NewStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "in_progress", "closed"]


class NewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=NOTE_MAX, pattern=SAYS_SOMETHING)


class Accepted(BaseModel):
    """A command's answer: the ticket and the version the command left it at."""

    id: int
    version: int


class TicketOut(BaseModel):
    id: int
    subject: str
    status: Literal["open", "in_progress", "closed"]
    preview: str
    has_note: bool
    version: int
    schema_version: int
    updated_at: float


class Page(BaseModel):
    tickets: list[TicketOut]
    next_after: int | None
    """Pass as `after` for the next page; null on the last."""


class Counts(BaseModel):
    open: int
    in_progress: int
    closed: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    projector: Literal["running", "stopped", "separate"]
    """Degraded: the projector thread stopped, a projection is dead-lettered, or a change
    older than the contract is missing with no projection on its way (stranded)."""
    backlog: int
    dead_letters: int
    lag_p99_ms: float
    unprojected_oldest_ms: float
    read_lag_contract_ms: int


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "The body is not JSON"},
    404: {"model": Error, "description": "No such ticket, or not in the read model yet"},
    409: {"model": Error, "description": "The ticket is closed, or an idempotency key reused"},
    422: {"model": Error, "description": "The request is not what the schema says"},
    503: {"model": Error, "description": "The database is busy; retry"},
}
TicketId = Annotated[int, PathParam(ge=1, le=ID_MAX)]


class Stores(threading.local):
    """One Store per thread, opened on first use, all on one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: Store | None = None

    def get(self) -> Store:
        if self.store is None:
            self.store = Store.open(self.path, create=False)
        return self.store


class Reads:
    """Reads served, and those older than the contract, since the server started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.over_contract = 0

    def count(self, over_contract: bool) -> None:
        with self._lock:
            self.total += 1
            self.over_contract += over_contract


def create_app(path: Path, *, clock: Clock | None = None, projector: bool = True) -> FastAPI:
    """The app over the lab database at `path` (made, at the current schema, if missing).
    With `projector`, a projector thread runs beside it for as long as it serves."""
    clock = clock or SystemClock()
    Store.open(path).close()  # refuse a foreign or newer file now, not on the first request
    stores, reads = Stores(path), Reads()
    stop, wake, thread = threading.Event(), threading.Event(), None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal thread
        if projector:
            thread = threading.Thread(target=_project, args=(path, stop, wake), daemon=True)
            thread.start()
        yield
        stop.set()
        wake.set()
        if thread is not None:
            thread.join()

    app = FastAPI(
        title="failure-mode-lab tickets",
        version="1",
        summary="A CQRS support-ticket service on the lab's runtime.",
        lifespan=lifespan,
    )

    def queue() -> Any:
        return service.queue(stores.get(), clock)

    def committed(ticket: model.Ticket) -> Accepted:
        """A command's answer; the projector is woken for the projection it enqueued."""
        wake.set()
        return Accepted(id=ticket.id, version=ticket.version)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        said = first["msg"]
        if first["type"] == "string_pattern_mismatch":  # the one pattern: SAYS_SOMETHING
            said = "must hold a character that is not white space"
        return JSONResponse({"error": f"{where}: {said}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own refusals (a body that is not JSON, a path or method no route
        has), in the same `{"error": ...}` shape as every other. A 405's `Allow` lists the
        methods of every route on the path: Starlette names only the first route's."""
        headers = dict(error.headers or {})
        if error.status_code == 405:
            path = request.url.path
            methods = {
                method
                for route in app.routes
                if isinstance(route, APIRoute) and route.path_regex.match(path)
                for method in route.methods
            }
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse(
            {"error": str(error.detail)}, status_code=error.status_code, headers=headers
        )

    @app.exception_handler(UsageError)
    async def refused(_: Request, error: UsageError) -> JSONResponse:
        status = 404 if isinstance(error, UnknownTicket) else 409 if isinstance(
            error, (TicketClosed, KeyReused)
        ) else 422  # fmt: skip
        return JSONResponse({"error": str(error)}, status_code=status)

    @app.exception_handler(StoreUnavailable)
    async def busy(_: Request, error: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"error": f"the database is busy: {error}"}, status_code=503)

    @app.post(
        "/tickets",
        status_code=201,
        response_model=Accepted,
        responses={**ERRORS, 200: {"model": Accepted, "description": "A retried create"}},
    )
    def create(
        body: NewTicket,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=model.KEY_MAX, pattern=SAYS_SOMETHING)
        ] = None,
    ) -> Accepted:
        """Open a ticket. With an `Idempotency-Key` header, a create sent again with the same
        key answers 200 with the ticket the first one opened; the same key with another
        subject or message is a 409."""
        ticket, new = model.opened(queue(), body.subject, body.message, key=idempotency_key)
        response.headers["Location"] = f"/tickets/{ticket.id}"
        if not new:
            response.status_code = 200  # a retry: nothing was opened
            return Accepted(id=ticket.id, version=ticket.version)
        return committed(ticket)

    @app.patch("/tickets/{ticket_id}/status", response_model=Accepted, responses=ERRORS)
    def set_status(ticket_id: TicketId, body: NewStatus) -> Accepted:
        return committed(model.set_status(queue(), ticket_id, body.status))

    @app.patch("/tickets/{ticket_id}/note", response_model=Accepted, responses=ERRORS)
    def set_note(ticket_id: TicketId, body: NewNote) -> Accepted:
        return committed(model.set_note(queue(), ticket_id, body.note))

    @app.get("/tickets/counts", response_model=Counts)
    def counts() -> Counts:
        """How many tickets are open, in progress and closed, by the read model."""
        found = views.status_counts(stores.get())
        return Counts(**{status: found.get(status, 0) for status in model.STATUSES})

    @app.get("/tickets/{ticket_id}", response_model=TicketOut, responses=ERRORS)
    def get_ticket(ticket_id: TicketId) -> TicketOut:
        store = stores.get()
        view = views.get_view(store, ticket_id)
        behind = lag.behind_ms(store, ticket_id, view and view.version, clock.now())
        reads.count(behind > lag.READ_LAG_MS)
        if view is None:
            model.get(store, ticket_id)  # 404 "no ticket N" when the write model lacks it too
            raise UnknownTicket(f"ticket {ticket_id} is not in the read model yet")
        return TicketOut(**vars(view))

    @app.get("/tickets", response_model=Page, responses=ERRORS)
    def list_tickets(
        status: Literal["open", "in_progress", "closed"] | None = None,
        after: Annotated[int, Query(ge=0, le=ID_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    ) -> Page:
        store = stores.get()
        page = views.list_views(store, status=status, after=after, limit=limit)
        now = clock.now()
        reads.count(any(lag.behind_ms(store, v.id, v.version, now) > lag.READ_LAG_MS for v in page))
        return Page(
            tickets=[TicketOut(**vars(v)) for v in page],
            next_after=page[-1].id if len(page) == limit else None,
        )

    @app.get("/health", response_model=Health)
    def health() -> Health:
        stats = lag.projection(stores.get(), clock.now())
        running = "separate" if not projector else "running" if _alive(thread) else "stopped"
        healthy = running != "stopped" and not stats.dead and not stats.stranded
        return Health(
            status="ok" if healthy else "degraded",
            projector=running,
            backlog=stats.backlog,
            dead_letters=stats.dead,
            lag_p99_ms=stats.lag_p99_ms,
            unprojected_oldest_ms=stats.unprojected_oldest_ms,
            read_lag_contract_ms=lag.READ_LAG_MS,
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus text format."""
        return prometheus(lag.projection(stores.get(), clock.now()), reads)

    return app


def prometheus(stats: lag.Projection, reads: Reads) -> str:
    """The service's figures in the Prometheus text exposition format (version 0.0.4)."""
    lines = []

    def metric(name: str, kind: str, about: str, *samples: tuple[str, float]) -> None:
        lines.append(f"# HELP {name} {about}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    metric(
        "fmlab_ticket_projection_backlog", "gauge",
        "Projection jobs waiting or running.", ("", stats.backlog),
    )  # fmt: skip
    metric(
        "fmlab_ticket_projection_errors_total", "counter",
        "Projection attempts that failed.", ("", stats.errors),
    )  # fmt: skip
    metric(
        "fmlab_ticket_projection_dead_letters", "gauge",
        "Projection jobs dead-lettered.", ("", stats.dead),
    )  # fmt: skip
    metric(
        "fmlab_ticket_projection_lag_ms", "summary",
        "Time from a command's commit to the projection of its version, in milliseconds.",
        ('{quantile="0.5"}', stats.lag_p50_ms), ('{quantile="0.99"}', stats.lag_p99_ms),
        ("_count", stats.samples),
    )  # fmt: skip
    metric(
        "fmlab_ticket_unprojected_oldest_ms", "gauge",
        "How long the oldest change the read model lacks has waited (0: it lacks none).",
        ("", stats.unprojected_oldest_ms),
    )  # fmt: skip
    metric(
        "fmlab_ticket_read_lag_contract_ms", "gauge",
        "How far behind the write model a read may be (READ_LAG_MS).", ("", lag.READ_LAG_MS),
    )  # fmt: skip
    metric(
        "fmlab_ticket_reads_total", "counter",
        "Reads served since the server started.", ("", reads.total),
    )  # fmt: skip
    metric(
        "fmlab_ticket_reads_over_contract_total", "counter",
        "Reads whose answer was behind the write model by more than the contract.",
        ("", reads.over_contract),
    )  # fmt: skip
    return "\n".join(lines) + "\n"


def _project(path: Path, stop: threading.Event, wake: threading.Event) -> None:
    process.run(service.projector(path), stop, log=None, wake=wake)


def _alive(thread: threading.Thread | None) -> bool:
    return thread is not None and thread.is_alive()
