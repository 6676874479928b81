"""The tickets service as a simulated world: its actors, interleaved with its projectors.

`TicketsWorld` is what a scenario names (`Scenario.world`); each run begins its own
`TicketActors`. The workers of the scenario are the projectors (runtime.tickets.projector).
Three more actors join them:

- the **agent** sends the script of commands, one transaction a step (two, without lever
  `ticket_outbox`); fault site `client_crash` can kill it before any of its steps, and
  the command in hand is never finished;
- the **reader** reads one ticket's row from the read model and logs what it saw
  (`ticket.read`), so INV_012 can tell whether a reader ever saw a ticket go back;
- the **rebuilder** rebuilds the read model by replay, one transaction a step.

Every choice (who steps, which ticket is read, whether the agent dies) is drawn from the
run's tape, so a seed is a timeline here as everywhere.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.tickets import views
from runtime.tickets.model import Command, Ticket, commanding

if TYPE_CHECKING:
    from runtime.sim import Simulation

AGENT = "agent"
READER = "reader"
REBUILDER = "rebuilder"
CORRUPT_FIRING = 0.5
"""The chance a switched-on `view_corrupt` garbles a row before a reconciliation looks:
damage is why a reconciliation runs, so about half of them have something to find."""
CHANGES = (
    ("set_status", "status", "in_progress"),
    ("set_note", "note", "Looking into it."),
    ("set_status", "status", "closed"),
)
"""What the agent does to each ticket after opening it: three more versions."""


@dataclass(frozen=True)
class TicketsWorld:
    tickets: int
    """Tickets the agent opens, each followed by CHANGES[:changes]."""
    changes: int = len(CHANGES)
    reads: int = 1
    """Reads the reader may make, per command the agent sends."""
    rebuilds: int = 0
    """Rebuilds the rebuilder makes during a run."""
    batch: int = 1
    """Tickets per transaction of a rebuild: one, so that every ticket is a step."""
    reconcile: bool = False
    """The rebuilder reconciles the read model first (runtime.tickets.views.reconcile),
    and rebuilds only when it finds damage; fault site `view_corrupt` garbles a row just
    before it looks (FM_022)."""

    def begin(self, sim: "Simulation") -> "TicketActors":
        return TicketActors(self, sim)

    def script(self) -> list[tuple[int, Command]]:
        """(which ticket of the script, command), in the order the agent sends them."""
        commands = []
        for n in range(self.tickets):
            subject = f"Ticket {n + 1}"
            commands.append((n, Command("create", None, {"subject": subject, "message": "Help"})))
            for name, field, value in CHANGES[: self.changes]:
                commands.append((n, Command(name, None, {field: value})))
        return commands


class TicketActors:
    """One run's agent, reader and rebuilder (runtime.sim.Actors)."""

    def __init__(self, world: TicketsWorld, sim: "Simulation") -> None:
        self.world = world
        self.sim = sim
        self.queue = sim.queue
        self._script = world.script()
        self.jobs = len(self._script)
        self.names = tuple(
            name
            for name, present in ((AGENT, True), (READER, world.reads), (REBUILDER, world.rebuilds))
            if present
        )
        self._ids: dict[int, int] = {}
        """Ticket of the script -> its id, once created."""
        self._sending: Iterator[tuple[str, Ticket]] | None = None
        self._reads_left = world.reads * len(self._script)
        self._rebuilds_left = world.rebuilds
        self._rebuild: Iterator[tuple[str, views.Rebuilt | None]] | None = None
        self._healed = False

    def ready(self) -> list[str]:
        actors = []
        if self._sending is not None or self._script:
            actors.append(AGENT)
        if self._ids and self._reads_left and READER in self.names:
            actors.append(READER)
        if self._ids and (self._rebuild is not None or self._rebuilds_left) and self._due():
            actors.append(REBUILDER)
        return actors

    def _due(self) -> bool:
        """A rebuild may start at any time; a reconciliation once the agent has sent every
        command and the read model has a row: before that, nearly every row is behind its
        ticket, lag a reconciliation rightly leaves alone."""
        if self._rebuild is not None or not self.world.reconcile:
            return True
        if self._script or self._sending is not None:
            return False
        return self.queue.store.one("SELECT 1 FROM ticket_views LIMIT 1") is not None

    def act(self, actor: str) -> str:
        if actor == AGENT:
            return self._send()
        if actor == READER:
            return self._read()
        return self._rebuild_step()

    def heal(self) -> None:
        self._healed = True

    # --- the agent --------------------------------------------------------------------

    def _send(self) -> str:
        sim = self.sim
        if (
            not self._healed
            and "client_crash" in sim.active_sites
            and sim.choices.maybe(("client_crash",), sim.scenario.mix.firing, "agent crash")
        ):
            return self.crash_agent()
        if self._sending is None:
            command = self._next_command()
            if command is None:
                return "idle"
            index, self._sending = command
            self._sending_for = index
        name, ticket = next(self._sending)
        self._ids.setdefault(self._sending_for, ticket.id)
        if name != "ticket_saved":
            self._sending = None
        return name

    def _next_command(self) -> tuple[int, Iterator[tuple[str, Ticket]]] | None:
        """The next command of the script whose ticket exists (or is created by it): a
        ticket whose creation the agent died before never gets its changes."""
        while self._script:
            index, command = self._script.pop(0)
            if command.name == "create":
                return index, commanding(self.queue, command)
            if index in self._ids:
                bound = Command(command.name, self._ids[index], command.fields)
                return index, commanding(self.queue, bound)
        return None

    def crash_agent(self) -> str:
        """The agent dies: the command in hand is never finished (or, between commands, the
        next one is never sent); the next agent starts with the command after it. Explored,
        fault site `client_crash` calls this; a scripted schedule calls it where it likes."""
        if self._sending is not None:
            self._sending.close()
            self._sending = None
        elif self._script:
            self._script.pop(0)  # it died before sending it: the command is never sent
        self.sim.marks.hit("fault.client_crash")
        self.queue.note("fault.client_crash", worker=AGENT)
        return "crashed"

    # --- the reader -------------------------------------------------------------------

    def _read(self) -> str:
        ids = sorted(self._ids.values())
        ticket = ids[self.sim.choices.below(len(ids), "read ticket")]
        view = views.get_view(self.queue.store, ticket)
        self._reads_left -= 1
        if self._rebuild is not None:
            self.sim.marks.hit("read.during_rebuild")
        self.queue.note("ticket.read", worker=READER, ticket=ticket, version=view and view.version)
        return "read"

    # --- the rebuilder ----------------------------------------------------------------

    def _rebuild_step(self) -> str:
        if self._rebuild is None and self.world.reconcile:
            self._rebuilds_left -= 1
            self._corrupt()
            if not views.reconcile(self.queue.store, self.queue.clock, by=REBUILDER):
                return "reconciled"
            self.sim.marks.hit("views.suspect")
            self._rebuild = self._rebuilding()
            return "found_damage"
        if self._rebuild is None:
            self._rebuilds_left -= 1
            self._rebuild = self._rebuilding()
        name, done = next(self._rebuild)
        if done is not None:
            self._rebuild = None
            if self.queue.policies.shadow_swap:
                self.sim.marks.hit("rebuild.swapped")
        return name

    def _rebuilding(self) -> Iterator[tuple[str, views.Rebuilt | None]]:
        return views.rebuilding(
            self.queue.store,
            self.queue.clock,
            batch=self.world.batch,
            policies=self.queue.policies,
            by=REBUILDER,
        )

    def _corrupt(self) -> None:
        """Fault site `view_corrupt`: one row of the read model is garbled (a bad sector, a
        hand-written UPDATE, a restore gone wrong), its version untouched."""
        sim = self.sim
        if self._healed or "view_corrupt" not in sim.active_sites:
            return
        if not sim.choices.maybe(("view_corrupt",), CORRUPT_FIRING, "view corrupt"):
            return
        store = self.queue.store
        rows = [row[0] for row in store.tuples("SELECT id FROM ticket_views ORDER BY id")]
        if not rows:
            return
        ticket = rows[sim.choices.below(len(rows), "corrupt ticket")]
        self.queue.store.all("UPDATE ticket_views SET preview = 'garbled' WHERE id = ?", (ticket,))
        sim.marks.hit("fault.view_corrupt")
        self.queue.note("fault.view_corrupt", worker=REBUILDER, ticket=ticket)
