"""The invariants, watching one store as it changes.

What the checkers need from the event log (who applied what, which executions committed,
which errors were logged, the replayed state of every job and execution) is folded in one
event at a time, so checking after every step of a simulated run costs the step's new
events, not the whole history again. Rows are read afresh: all of them by a fresh Monitor,
only the changed ones (runtime.watch) by a watching one, and only the jobs those touched
are checked again: what a step did not touch cannot have changed its verdict.

The rules themselves live in runtime.invariants, which hands them in. A fresh Monitor
folds the whole log at once: that is `invariants.check()`, the batch check. The same code
serves both, so the per-step check and the batch check cannot disagree; a test compares
them after every step of many runs all the same.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from runtime.mirror import Mirror
from runtime.states import RUNNING
from runtime.store import Event, Store


class JobView(NamedTuple):
    """One job as a check sees it: its row (None if it has none), executions and effects."""

    id: int
    row: dict[str, Any] | None
    executions: list[dict[str, Any]]
    effects: list[dict[str, Any]]


class Rule(Protocol):
    """What the monitor needs of an invariant (runtime.invariants.Invariant): its id, its
    checker over the monitor, and, for a rule over the log itself, a fold of each event."""

    id: str
    checker: Callable[["Monitor", bool], list[Any]]
    fold: Callable[["Monitor", Event], None] | None


class Monitor:
    """The `rules` over one store; `watch=True` for an in-memory simulation store (and
    `from_empty=True` when it is a fresh copy of the simulator's watched image)."""

    def __init__(
        self, store: Store, rules: Sequence[Rule], *, watch: bool = False, from_empty: bool = False
    ) -> None:
        self.store = store
        self.rules = tuple(rules)
        self._by_id = {rule.id: rule for rule in self.rules}
        self._checkers = tuple(rule.checker for rule in self.rules)
        self._folds = tuple(
            rule.fold
            for rule in self.rules
            if rule.fold is not None and getattr(rule, "folds_on", None) is None
        )
        """The folds that read every event."""
        self._folds_by_type: dict[str, list[Callable[[Monitor, Event], None]]] = defaultdict(list)
        """The folds that read only some event types, by type: most events skip them."""
        for rule in self.rules:
            for type_ in getattr(rule, "folds_on", None) or ():
                assert rule.fold is not None
                self._folds_by_type[type_].append(rule.fold)
        self.watch = watch
        self.mirror = Mirror(store, watch=watch, from_empty=from_empty)
        self.seq = 0
        self.fresh: list[Event] = []
        """The events the latest check folded in."""
        self.jobs = self.mirror.jobs
        self.executions = self.mirror.executions
        self.effects = self.mirror.effects
        self.executions_of = self.mirror.executions_of
        self.effects_of = self.mirror.effects_of
        self.dirty: list[JobView] = []
        """The jobs whose rows, executions, effects or events changed since the last check:
        the only ones whose verdict can have changed."""
        self.triggers: frozenset[str] = frozenset()
        self._schema_version = -1
        # Folded from the log.
        self.applied_seq: dict[int, int] = {}
        self.committed: set[int] = set()
        self.external_effects: set[int] = set()
        self.absorbed_by: dict[int, set[int]] = defaultdict(set)
        """Per effect, the executions whose repeat of it was absorbed."""
        self.absorbed_jobs: set[int] = set()
        self.error_events: dict[int, list[Event]] = defaultdict(list)
        """Per job, the events that carry an error, in log order; only ever added to."""
        self.signalled: dict[tuple[str, int], tuple[str | None, ...]] = {}
        """INV_005's clean verdicts: per ended execution ("execution", id), its status and
        error, and per job ("job", id), its last error, when an error event was found to
        carry them. Error events are only ever added, so such a verdict holds for as long
        as the row still says the same."""
        self.leases: dict[int, list[Event]] = defaultdict(list)
        self.last_sweep: Event | None = None
        self.replayed: dict[str, dict[int, str | None]] = {"job": {}, "execution": {}}
        self.replayed_seq: dict[str, dict[int, int]] = {"job": {}, "execution": {}}
        self.newest_lease: dict[int, Event] = {}
        self.expires: dict[int, float] = {}
        self.lease_seq: dict[int, int] = {}
        """Per execution, the seq of the event that granted or last extended its lease."""
        self.accounts_opened: dict[str, int] = {}
        """Per account, the seq of its `account.opened` event."""
        self.credits: dict[str, list[Event]] = defaultdict(list)
        """Per account, its `account.credited` events."""
        self.accounts_touched = False
        """An account event was folded in since INV_008 last looked."""
        self.retry_bounds: dict[str, tuple[int, float, int]] = {}
        """Per dependency (its sink), the bound it declared: (retries, window_s, seq)."""
        self.retries: dict[str, list[Any]] = defaultdict(list)
        """Per dependency, the retries offered to it, in time order."""
        self.retries_touched: set[str] = set()
        """The dependencies offered a retry since INV_009 last looked."""
        self.intents_seen = False
        """An intent or an intent's job was ever logged: INV_010 has something to check."""
        self.intents_touched = False
        """An intent or an intent's job was logged since INV_010 last looked."""
        self.tickets_seen = False
        """A ticket event was ever folded in: from then on job endings concern INV_012."""
        self.tickets_touched = False
        """The read model or its projection jobs changed since INV_012 last looked."""
        self.ticket_suspects: dict[int, int] = {}
        """Per ticket whose read-model row the service found damaged, the seq of the
        finding; until a rebuild that started after it has swapped in."""
        self.ticket_reads: dict[int, Event] = {}
        """Per ticket, the logged read that saw its newest version so far."""
        self.rebuilds: dict[str, Event] = {}
        """Per derived table, its latest `derived.rebuilt` event."""
        self.found_in_log: dict[str, list[Any]] = defaultdict(list)
        """Per rule, what its fold found wrong with the log itself during this check."""

    def check(self, *, final: bool = False, only: Iterable[str] | None = None) -> list[Any]:
        """Fold in what is new, then run the invariants over the store as it is now.

        Violations of the log itself (an illegal move, a stale write) are reported by the
        check that first folds them in; violations of the current state, by the checks
        after the rows involved changed. `final` checks every row again.
        """
        jobs, self.fresh = self._read(final)
        if self.found_in_log:
            self.found_in_log = defaultdict(list)
        if not jobs and not self.fresh and not final:
            self.dirty = []
            return []  # nothing was written since the last check, so nothing new is broken
        swept = False
        for event in self.fresh:
            self._fold(event)
            swept = swept or event.type == "reaper.swept"
            if event.job_id is not None:
                jobs.add(event.job_id)
            elif event.execution_id in self.executions:
                jobs.add(self.executions[event.execution_id]["job_id"])
        if final:
            jobs.update(self.jobs)
        elif swept:  # a sweep may condemn any RUNNING job (INV_004); no other verdict moves
            jobs.update(job for job, row in self.jobs.items() if row["state"] == RUNNING)
        self.dirty = [
            JobView(job, self.jobs.get(job), self.executions_of(job), self.effects_of(job))
            for job in sorted(jobs)
        ]
        if only is None:
            return [v for checker in self._checkers for v in checker(self, final)]
        return [v for i in only for v in self._by_id[i].checker(self, final)]

    def _read(self, final: bool) -> tuple[set[int], list[Event]]:
        """Bring the rows up to date and fetch the new events (runtime.mirror), and, when
        the schema may have changed, which triggers the store has (INV_003 reads them)."""
        if final or not self.watch or self._schema_version < 0:
            version = self.store.schema_cookie()
            if version != self._schema_version:
                self._schema_version = version
                self.triggers = self.store.triggers()
        return self.mirror.refresh(self.seq)

    def _fold(self, event: Event) -> None:
        for fold in self._folds:  # before `seq` moves on: a rule may compare with it
            fold(self, event)
        for fold in self._folds_by_type.get(event.type, ()):
            fold(self, event)
        self.seq = event.seq
        kind = event.type
        if kind == "effect.applied":
            self.applied_seq[event.detail["effect"]] = event.seq
            if event.detail.get("external"):
                self.external_effects.add(event.detail["effect"])
        elif kind == "effect.absorbed":
            self.absorbed_by[event.detail["effect"]].add(event.execution_id)
            self.absorbed_jobs.add(event.job_id)
        elif kind == "execution.committed":
            self.committed.add(event.execution_id)
        elif kind == "reaper.swept":
            self.last_sweep = event
        elif kind == "job.redriven":
            self.leases[event.job_id] = []
        elif kind == "job.leased":
            self.leases[event.job_id].append(event)
            self.lease_seq[event.execution_id] = event.seq
        elif kind == "lease.extended":
            self.lease_seq[event.execution_id] = event.seq
        if event.job_id is not None and event.detail.get("error"):
            self.error_events[event.job_id].append(event)

    # Evidence helpers.

    def seqs_of_effect(self, effect: int) -> tuple[int, ...]:
        seq = self.applied_seq.get(effect)
        return () if seq is None else (seq,)
