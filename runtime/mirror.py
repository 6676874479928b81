"""The rows of one store that the checkers and the simulator's scheduler read, kept current.

A simulated run asks the same questions after every step: which jobs changed (for the
invariant checks) and who can act now (for the scheduler). Asking SQLite each time costs
more than the step itself. So the rows those questions need are mirrored in memory and
brought up to date from the store's own record of what each write touched (runtime.watch);
a store that is not watched is read whole each time instead.

The mirror answers from rows the database wrote, never from what the runtime meant to
write, so it cannot hide a bug the database would show. `tests/test_sim.py` compares its
answers with the queue's own SQL after every step of many runs.
"""

from collections import defaultdict
from typing import Any

from runtime import states
from runtime.store import Event, Store, event
from runtime.watch import COLUMNS, ROWS, changes_after, install_watch

_JOB_ID = {table: 1 + COLUMNS[table].index("job_id") for table in ("executions", "effects")}
"""Per child table, where its job_id sits in a change (which starts with the table name)."""


class Mirror:
    def __init__(self, store: Store, *, watch: bool = False, from_empty: bool = False) -> None:
        """`from_empty`: the store was empty when its watch began (a copy of the
        simulator's watched image), so every row it holds arrives as a change and even
        the first refresh reads only changes."""
        self.store = store
        self.watch = watch
        self.jobs: dict[int, dict[str, Any]] = {}
        self.executions: dict[int, dict[str, Any]] = {}
        self.effects: dict[int, dict[str, Any]] = {}
        self.executions_by_job: dict[int, list[int]] = defaultdict(list)
        self.effects_by_job: dict[int, list[int]] = defaultdict(list)
        self.effects_by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        """Per (sink, key), the ids of the effects recorded under it, oldest first."""
        self.fresh_effects: list[int] = []
        """The ids of the effect rows the latest refresh found written (every row, when it
        read them all): a key none of them carries has the same effects as before."""
        self._read_all = not (watch and from_empty)
        self._change = 0
        """The number of the last change read from `fmlab_changes` (when watching)."""
        self._rows_written = -1
        """The connection's count of rows written when the changes were last read: while
        it stands still, nothing was written, so there is no change to read."""
        if watch:
            install_watch(store)

    def refresh(self, after_seq: int) -> tuple[set[int], list[Event]]:
        """Bring the rows up to date and fetch the events after `after_seq`; returns the ids
        of the jobs whose rows, executions or effects changed, and those events. Only what
        changed is read when watching; everything, the first time and when not."""
        if self._read_all:
            return self._read_whole(after_seq)
        jobs: set[int] = set()
        events: list[Event] = []
        if self.fresh_effects:
            self.fresh_effects = []
        written = self.store.rows_written()
        if written == self._rows_written:
            return jobs, events
        self._rows_written = written
        changes = changes_after(self.store, self._change)
        for change in changes:
            table = change[0]
            if table == "events":
                events.append(event(*change[1:8]))
                continue
            jobs.add(self._apply(change))
            if table == "effects":
                self.fresh_effects.append(change[1])
        if changes:
            self._change = changes[-1][-1]
        return jobs, events

    def _read_whole(self, after_seq: int) -> tuple[set[int], list[Event]]:
        store = self.store
        self._read_all = not self.watch
        if self.watch:
            self._change = store.one("SELECT coalesce(max(n), 0) FROM fmlab_changes")[0]
        for table in ROWS:
            getattr(self, table).clear()
        self.executions_by_job.clear()
        self.effects_by_job.clear()
        self.effects_by_key.clear()
        jobs = set()
        for table in ROWS:
            columns = COLUMNS[table]
            for row in store.tuples(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"):
                jobs.add(self._apply((table, *row)))
        self.fresh_effects = list(self.effects)
        return jobs, store.events(after_seq)

    def _apply(self, change: tuple[Any, ...]) -> int:
        """Put one changed row in place (a deletion when all but its id is NULL); returns
        the id of the job it belongs to (-1 for a deleted row never seen)."""
        table, row_id = change[0], change[1]
        rows: dict[int, dict[str, Any]] = getattr(self, table)
        columns = COLUMNS[table]
        old = rows.get(row_id)
        if change[2] is None:  # NOT NULL in every table watched: this row was deleted
            rows.pop(row_id, None)
            if table == "jobs":
                return row_id
            return -1 if old is None else old["job_id"]
        # The change's slots run past the table's last column; zip stops at that column.
        row = rows[row_id] = dict(zip(columns, change[1:], strict=False))
        if table == "jobs":
            return row_id
        job_id = change[_JOB_ID[table]]
        if old is None or old["job_id"] != job_id:
            by_job = self.executions_by_job if table == "executions" else self.effects_by_job
            by_job[job_id].append(row_id)
        if table == "effects" and (old is None or (old["sink"], old["key"]) != _key(row)):
            self.effects_by_key[_key(row)].append(row_id)
        return job_id

    def executions_of(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.executions
        ids = self.executions_by_job.get(job_id, ())
        return [rows[i] for i in ids if i in rows and rows[i]["job_id"] == job_id]

    def effects_of(self, job_id: int) -> list[dict[str, Any]]:
        rows = self.effects
        ids = self.effects_by_job.get(job_id, ())
        return [rows[i] for i in ids if i in rows and rows[i]["job_id"] == job_id]

    def effects_keyed(self, sink: str, key: str) -> list[dict[str, Any]]:
        """Every effect recorded under (`sink`, `key`), whichever job applied it."""
        rows = self.effects
        ids = self.effects_by_key.get((sink, key), ())
        return [rows[i] for i in ids if i in rows and _key(rows[i]) == (sink, key)]

    # The scheduler's questions: the queue's `due()` and `next_deadline()`, from the rows.

    def due(self, now: float) -> tuple[bool, bool]:
        """(a job is ready, a lease has expired) at `now`, as `Queue.due` answers it."""
        jobs = self.jobs
        ready = False
        for job in jobs.values():
            if job["state"] == states.PENDING and job["run_at"] <= now:
                ready = True
                break
        for execution in self.executions.values():
            if (
                execution["status"] in states.EXECUTION_OPEN
                and execution["lease_expires_at"] <= now
            ):
                job = jobs.get(execution["job_id"])
                if (
                    job is not None
                    and job["state"] == states.RUNNING
                    and job["fencing_token"] == execution["fencing_token"]
                ):
                    return ready, True
        return ready, False

    def next_deadline(self, now: float) -> float | None:
        """The next instant after `now` when something falls due, as `Queue.next_deadline`."""
        times = [
            job["run_at"]
            for job in self.jobs.values()
            if job["state"] == states.PENDING and job["run_at"] > now
        ]
        times += (
            execution["lease_expires_at"]
            for execution in self.executions.values()
            if execution["status"] in states.EXECUTION_OPEN and execution["lease_expires_at"] > now
        )
        return min(times, default=None)


def _key(effect: dict[str, Any]) -> tuple[str, str]:
    return effect["sink"], effect["key"]
