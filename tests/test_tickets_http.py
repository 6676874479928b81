"""The tickets API over real HTTP: a started `fmlab serve` on loopback, real requests.

Nothing here uses an in-process client. The server is its own process on a real database
file; the projector is its thread, or (where it is killed and started again) its own
`fmlab project` process. Waiting is bounded: a test polls the server until the read model
has caught up, and fails when the bound passes.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runtime import invariants
from runtime.clock import SystemClock
from runtime.store import Store
from runtime.tickets import model, service

FMLAB = Path(sys.executable).parent / "fmlab"
WAIT_S = 20.0


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """(status, parsed JSON body or text)."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        kind = "json" if text[:1] in "{[" else "text"
        return status, json.loads(text) if kind == "json" else text

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert status < 300, (method, path, status, answer)
        return answer

    def until(self, condition: Any, what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            answer = condition()
            if answer:
                return answer
            time.sleep(0.02)
        raise AssertionError(f"not within {WAIT_S} s: {what}")

    def quiet(self) -> None:
        self.until(lambda: self.ok("GET", "/health")["backlog"] == 0, "projection backlog 0")


@contextmanager
def serving(db: Path, *extra: str) -> Iterator[Api]:
    server = subprocess.Popen(
        [str(FMLAB), "serve", "--db", str(db), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("serving tickets on "), (
            line,
            server.stderr and server.stderr.read(),
        )
        yield Api(line.split()[-1])
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=20)
        assert (server.returncode, errors) == (0, "")


def projector(db: Path) -> subprocess.Popen:
    """`fmlab project`: a worker process with the projector's handler; its log (a JSON line
    a step) is not read here, so it goes nowhere rather than filling a pipe."""
    return subprocess.Popen(
        [str(FMLAB), "project", "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def violations(db: Path) -> list[str]:
    store = Store.open(db, read_only=True)
    try:
        return [str(v) for v in invariants.check(store, final=True)]
    finally:
        store.close()


# --- the API ------------------------------------------------------------------------


def test_commands_answer_with_the_new_version_and_reads_catch_up(tmp_path):
    db = tmp_path / "tickets.db"
    with serving(db) as api:
        status, created = api.call(
            "POST", "/tickets", {"subject": "Printer on fire", "message": "x" * 60}
        )
        assert (status, created) == (201, {"id": 1, "version": 1})
        assert api.ok("PATCH", "/tickets/1/status", {"status": "in_progress"})["version"] == 2
        assert api.ok("PATCH", "/tickets/1/note", {"note": "Extinguisher sent"})["version"] == 3

        view = api.until(
            lambda: (
                (v := api.call("GET", "/tickets/1"))[0] == 200 and v[1]["version"] == 3 and v[1]
            ),
            "ticket 1 read at version 3",
        )
        assert view["preview"] == "x" * 50 + "…"
        assert (view["status"], view["has_note"]) == ("in_progress", True)
        counts = api.ok("GET", "/tickets/counts")
        assert counts == {"open": 0, "in_progress": 1, "closed": 0}
        page = api.ok("GET", "/tickets?status=in_progress")
        assert [t["id"] for t in page["tickets"]] == [1] and page["next_after"] is None
        health = api.ok("GET", "/health")
        assert (health["status"], health["projector"], health["backlog"]) == ("ok", "running", 0)
        _, metrics = api.call("GET", "/metrics")
        assert "fmlab_ticket_projection_backlog 0" in metrics
        assert 'fmlab_ticket_projection_lag_ms{quantile="0.99"}' in metrics
        assert "fmlab_ticket_projection_lag_ms_count 3" in metrics
        assert "fmlab_ticket_read_lag_contract_ms 500" in metrics
    assert violations(db) == []


BAD = [
    ("POST", "/tickets", {"subject": "s"}, 422, "body.message: Field required"),
    ("POST", "/tickets", {"subject": "s", "message": "m", "x": 1}, 422, "body.x"),
    ("POST", "/tickets", {"subject": 5, "message": "m"}, 422, "body.subject"),
    ("POST", "/tickets", {"subject": "   ", "message": "m"}, 422, "body.subject: must hold a"),
    ("POST", "/tickets", {"subject": "\ud800", "message": "m"}, 422, "body.subject"),
    ("POST", "/tickets", {"subject": "s" * 201, "message": "m"}, 422, "body.subject"),
    ("POST", "/tickets", b"{not json", 422, "JSON decode error"),
    ("PATCH", "/tickets/1/status", {"status": "reopened"}, 422, "body.status"),
    ("PATCH", "/tickets/99/status", {"status": "closed"}, 404, "no ticket 99"),
    ("PATCH", "/tickets/2/note", {"note": "more"}, 409, "ticket 2 is closed"),
    ("PATCH", "/tickets/0/note", {"note": "n"}, 422, "path.ticket_id"),
    ("GET", "/tickets/99999999999999999999", None, 422, "path.ticket_id"),
    ("GET", "/tickets/abc", None, 422, "path.ticket_id"),
    ("GET", "/tickets/99", None, 404, "no ticket 99"),
    ("GET", "/tickets?limit=0", None, 422, "query.limit"),
    ("GET", "/tickets?status=lost", None, 422, "query.status"),
]


def test_bad_requests_get_a_4xx_with_a_clear_json_error_and_change_nothing(tmp_path):
    db = tmp_path / "tickets.db"
    with serving(db) as api:
        api.ok("POST", "/tickets", {"subject": "One", "message": "open"})
        api.ok("POST", "/tickets", {"subject": "Two", "message": "to close"})
        api.ok("PATCH", "/tickets/2/status", {"status": "closed"})
        api.quiet()
        before = db.read_bytes(), (tmp_path / "tickets.db-wal").read_bytes()
        for method, path, body, status, error in BAD:
            raw = body if isinstance(body, bytes) else None
            got, answer = api.call(method, path, None if raw else body, raw=raw)
            assert (got, error in answer.get("error", "")) == (status, True), (path, answer)
        assert (db.read_bytes(), (tmp_path / "tickets.db-wal").read_bytes()) == before


def test_a_ticket_not_projected_yet_is_a_404_that_says_so(tmp_path):
    db = tmp_path / "tickets.db"
    with serving(db, "--no-projector") as api:
        api.ok("POST", "/tickets", {"subject": "Soon", "message": "not projected"})
        status, answer = api.call("GET", "/tickets/1")
        assert (status, answer) == (404, {"error": "ticket 1 is not in the read model yet"})
        assert api.ok("GET", "/health")["projector"] == "separate"


# --- concurrency --------------------------------------------------------------------


def test_concurrent_commands_each_get_their_own_version_and_all_are_projected(tmp_path):
    """Eight clients at once: each opens its own tickets and all of them note ticket 1.
    Every command on ticket 1 gets a distinct version; nothing is lost or projected wrong."""
    db = tmp_path / "tickets.db"
    clients, commands = 8, 15
    with serving(db) as api:
        api.ok("POST", "/tickets", {"subject": "Shared", "message": "everyone notes this"})
        versions: list[int] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            for k in range(commands):
                api.ok("POST", "/tickets", {"subject": f"c{n}-{k}", "message": "mine"})
                version = api.ok("PATCH", "/tickets/1/note", {"note": f"client {n}, note {k}"})
                with lock:
                    versions.append(version["version"])

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        api.quiet()

        assert sorted(versions) == list(range(2, 2 + clients * commands))
        shared = api.ok("GET", "/tickets/1")
        assert shared["version"] == 1 + clients * commands
        listed, after = [], 0
        while after is not None:
            page = api.ok("GET", f"/tickets?after={after}&limit=50")
            listed += page["tickets"]
            after = page["next_after"]
        assert len(listed) == 1 + clients * commands
    assert violations(db) == []


def test_a_projector_killed_mid_run_and_started_again_loses_nothing(tmp_path):
    """The projector is its own process, killed with SIGKILL every few commands (whatever
    it held, lease and all, is abandoned) and started again. Once a last one has run until
    quiet, the read model is exactly the projection of the write model."""
    db = tmp_path / "tickets.db"
    kills = 0
    with serving(db, "--no-projector") as api:
        running = projector(db)
        for n in range(60):
            api.ok("POST", "/tickets", {"subject": f"t{n}", "message": "m"})
            api.ok("PATCH", f"/tickets/{n + 1}/status", {"status": "in_progress"})
            if n % 6 == 5:
                running.send_signal(signal.SIGKILL)
                running.wait(timeout=10)
                kills += 1
                running = projector(db)
        api.quiet()
        running.send_signal(signal.SIGTERM)
        assert running.wait(timeout=20) == 0
        assert {t["status"] for t in api.ok("GET", "/tickets?limit=500")["tickets"]} == {
            "in_progress"
        }
    assert kills == 10
    assert violations(db) == []


# --- rebuild under reads ------------------------------------------------------------


@pytest.mark.campaign  # three rebuilds of 1,200 tickets under live readers: seconds of CPU
def test_a_rebuild_under_concurrent_reads_never_shows_an_empty_or_partial_list(tmp_path):
    """1,200 tickets, so a rebuild fills its shadow in three batches. While `fmlab
    rebuild` runs three times, readers list every ticket and read single ones: every
    list has every ticket, and no ticket's version ever goes back."""
    db = tmp_path / "tickets.db"
    tickets = 1_200
    store = Store.open(db)
    queue = service.queue(store, SystemClock())
    for n in range(tickets):
        model.create(queue, f"t{n}", "m")
    service.project_until_quiet(queue)
    store.close()
    with serving(db) as api:
        stop, problems = threading.Event(), []
        # Versions from lists that had finished: a list started after them may not show
        # less. Two lists that overlap in time have no order, so they are not compared.
        settled, settling = {}, threading.Lock()

        def reader() -> None:
            while not stop.is_set():
                with settling:
                    floor = dict(settled)
                listed, after = [], 0
                while after is not None:
                    status, page = api.call("GET", f"/tickets?after={after}&limit=500")
                    if status != 200:
                        problems.append(f"a list page answered {status}: {page}")
                        return
                    listed += page["tickets"]
                    after = page["next_after"]
                if len(listed) != tickets:
                    problems.append(f"a list of {len(listed)} tickets")
                sampled = {ticket["id"]: ticket["version"] for ticket in listed[::97]}
                problems.extend(
                    f"ticket {id} went back from version {floor[id]} to {version}"
                    for id, version in sampled.items()
                    if version < floor.get(id, 0)
                )
                with settling:
                    for id, version in sampled.items():
                        settled[id] = max(version, settled.get(id, 0))

        def writer() -> None:
            n = 0
            while not stop.is_set():
                api.ok("PATCH", f"/tickets/{1 + n % tickets}/note", {"note": f"note {n}"})
                n += 1

        threads = [threading.Thread(target=f) for f in (reader, reader, writer)]
        for thread in threads:
            thread.start()
        rebuilds = 0
        for _ in range(3):
            done = subprocess.run(
                [str(FMLAB), "rebuild", "--db", str(db)], capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            assert "1200 tickets" in done.stdout and "3 batches" in done.stdout
            rebuilds += 1
        stop.set()
        for thread in threads:
            thread.join()
        api.quiet()
    assert rebuilds == 3 and settled
    assert problems == []
    assert violations(db) == []


@pytest.mark.parametrize(
    "argv,error",
    [
        (["rebuild", "--db", "missing.db"], "missing.db"),
        (["project", "--db", "missing.db"], "missing.db"),
        (["serve", "--port", "70000"], "port must be at most 65535"),
    ],
)
def test_bad_input_to_the_service_commands_is_one_line_and_exit_2(tmp_path, argv, error):
    done = subprocess.run(
        [str(FMLAB), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=30,
        env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and error in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_create_retried_with_its_idempotency_key_opens_one_ticket(tmp_path):
    """A client that never heard back sends the create again with the same key: 200 and the
    first ticket, not a second one. The same key with another body is a 409."""
    db = tmp_path / "tickets.db"
    with serving(db) as api:
        body = {"subject": "Printer on fire", "message": "Third floor"}
        first = api.call("POST", "/tickets", body, headers={"Idempotency-Key": "req-7"})
        again = api.call("POST", "/tickets", body, headers={"Idempotency-Key": "req-7"})
        other = api.call(
            "POST", "/tickets", {**body, "message": "Fourth floor"},
            headers={"Idempotency-Key": "req-7"},
        )  # fmt: skip

        assert first == (201, {"id": 1, "version": 1})
        assert again == (200, {"id": 1, "version": 1})
        assert other[0] == 409 and "req-7" in other[1]["error"]
        api.quiet()
    assert violations(db) == []
