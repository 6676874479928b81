"""The docs are checked like code. Prior art: sqlite-utils' documentation tests.

A chapter that disagrees with the runtime fails here: an invariant reworded, a transition
added to runtime/states.py but not drawn, a lever without its section, a chapter number
skipped, an example whose output the code no longer prints. When outputs change on
purpose, regenerate them with `python3 -m uv run python tests/test_docs.py --write` and
read the diff before keeping it.
"""

import contextlib
import io
import random
import re
import shlex
import sys
import typing
from dataclasses import fields
from functools import cache
from pathlib import Path

import pytest

from failure_modes import catalog
from failure_modes.FM_001_duplicate_retry import scenario as fm001
from failure_modes.FM_006_retry_storm import scenario as fm006
from failure_modes.FM_010_clock_jump import scenario as fm010
from failure_modes.FM_011_lost_update import scenario as fm011
from runtime import cli, invariants, states
from runtime.clock import SimClock
from runtime.effects import Effect
from runtime.errors import LeaseLost
from runtime.faults import AdvanceClock, CrashAfter, Fault, FaultPlan, PauseAfter
from runtime.intents.log import annotate, record
from runtime.invariants import INVARIANTS
from runtime.observe import clusters
from runtime.policies import GUARDED, LEVERS, Policies
from runtime.queue import Job, Queue
from runtime.sim import JobSpec, Scenario, Simulation
from runtime.store import Event, Store
from runtime.worker import ENDINGS, STEPS

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHAPTER = re.compile(r"^(\d{2})_[a-z0-9_]+\.md$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\w+)\s*(?::\s*(.*?))?\s*$")
REGENERATE = "python3 -m uv run python tests/test_docs.py --write"


def chapters() -> list[Path]:
    return sorted(path for path in DOCS.iterdir() if CHAPTER.match(path.name))


def read(name: str) -> str:
    return (DOCS / name).read_text()


def h2_sections(text: str) -> list[tuple[str, str]]:
    """Each `## heading` with the text below it, up to the next `## heading`."""
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return [(part.split("\n", 1)[0].strip(), part.partition("\n")[2]) for part in parts]


# --- (4) the chapters, in order --------------------------------------------------------


def test_chapters_are_numbered_from_00_without_gaps_or_repeats():
    numbers = [int(CHAPTER.match(path.name).group(1)) for path in chapters()]

    assert len(numbers) >= 5, "chapters 00 to 04 are missing"
    assert numbers == list(range(len(numbers))), [path.name for path in chapters()]


def test_the_scope_chapter_links_every_chapter_in_reading_order():
    [reading] = [body for heading, body in h2_sections(read("00_scope.md")) if "read" in heading]
    linked = re.findall(r"\]\((\d{2}_[a-z0-9_]+\.md)\)", reading)

    assert list(dict.fromkeys(linked)) == [path.name for path in chapters()]


# --- (1) the invariants ----------------------------------------------------------------


def invariant_sections() -> list[tuple[str, str]]:
    return [(h, body) for h, body in h2_sections(read("01_invariants.md")) if h.startswith("INV")]


def test_each_invariant_has_exactly_one_section_in_order_with_its_statement():
    headings = [heading for heading, _ in invariant_sections()]

    assert headings == [f"{inv.id}: {inv.statement}" for inv in INVARIANTS]


def test_each_invariant_section_names_its_checker_and_its_kind():
    for inv, (_, body) in zip(INVARIANTS, invariant_sections(), strict=True):
        assert f"`{inv.checker.__name__}`" in body, inv.id
        assert f"**Kind:** {inv.kind}\n" in body, inv.id


def test_each_invariant_section_names_exactly_the_failure_modes_that_break_it():
    """A failure mode's META.invariants is the source; the doc must follow it."""
    failure_modes = catalog.discover()
    for inv, (_, body) in zip(INVARIANTS, invariant_sections(), strict=True):
        exercised_by = body.partition("Exercised by:")[2]
        assert exercised_by, f"{inv.id} has no 'Exercised by:' line"
        named = set(re.findall(r"FM_\d{3}", exercised_by))
        breaking = {fm.meta.id for fm in failure_modes if inv.id in fm.meta.invariants}
        assert named == breaking, f"{inv.id}: the doc names {named}, META says {breaking}"


# --- (2) the state machines ------------------------------------------------------------

Arrows = dict[tuple[str | None, str], set[str]]


def state_diagrams(text: str) -> dict[str, Arrows]:
    """The stateDiagram blocks of a page: machine name -> {(before, after): event labels}."""
    diagrams: dict[str, Arrows] = {}
    for block in FENCE.finditer(text):
        language, body = block.groups()
        lines = body.strip().splitlines()
        if language != "mermaid" or not lines or lines[0].strip() != "stateDiagram-v2":
            continue
        arrows: Arrows = {}
        for line in lines[1:]:
            if "-->" not in line:
                continue
            match = ARROW.match(line)
            assert match, f"cannot read this arrow: {line!r}"
            before = None if match.group(1) == "[*]" else match.group(1)
            move = (before, match.group(2))
            assert move not in arrows, f"{move} is drawn twice"
            arrows[move] = {e.strip() for e in (match.group(3) or "").split("/") if e.strip()}
            assert arrows[move], f"the arrow {line.strip()!r} names no event"
        named = {state for move in arrows for state in move if state is not None}
        machine = (
            "job"
            if named <= set(states.JOB_STATES)
            else "execution"
            if named <= set(states.EXECUTION_STATES)
            else f"a diagram mixing {sorted(named)}"
        )
        assert machine not in diagrams, f"two diagrams of the {machine} machine"
        diagrams[machine] = arrows
    return diagrams


def test_the_state_diagrams_draw_exactly_the_transitions_of_runtime_states():
    diagrams = state_diagrams(read("02_state_model.md"))

    assert set(diagrams) == {"job", "execution"}
    assert set(diagrams["job"]) == states.JOB_TRANSITIONS
    assert set(diagrams["execution"]) == states.EXECUTION_TRANSITIONS


@cache
def tour() -> tuple[Event, ...]:
    """Every verb of the queue, every transition of both machines and every event type, at
    least once, under GUARDED; returns everything logged. It is a legitimate run: every
    invariant holds at the end."""
    clock, store = SimClock(), Store.memory()
    queue = Queue(
        store,
        clock,
        random.Random(1),
        Policies(lease_s=30.0, attempts_max=2, retry_delay_s_base=1.0, retry_delay_s_max=60.0),
    )
    effect = Effect(sink="mail", key="welcome-42", detail={"user": 42})
    job = queue.submit("send_welcome", {"user": 42}, idempotency_key="welcome-42")
    assert queue.submit("send_welcome", {"user": 42}, idempotency_key="welcome-42") == job

    # Attempts 1-2: a failure before the start, then one after it; the second is the last.
    lease = queue.heartbeat(queue.lease("w1"))
    queue.fail(lease, "ConnectionError: refused before the handler started")
    clock.set(queue.get(job).run_at)
    lease = queue.lease("w1")
    queue.start(lease)
    assert queue.fail(lease, "ConnectionError: refused") == states.DEAD

    # Redriven. w1 goes quiet and is rescued, and its late commit is refused; w2 commits,
    # goes quiet before its ack, and the reaper finds the budget spent.
    queue.redrive(job, reason="tour", by="operator")
    stale = queue.lease("w1")
    queue.start(stale)
    clock.advance(30.0)
    assert queue.reap() == [job]
    with pytest.raises(LeaseLost):
        queue.commit(stale, effect)
    lease = queue.lease("w2")
    queue.start(lease)
    queue.commit(lease, effect)
    clock.advance(30.0)
    assert queue.reap() == [job]
    assert queue.get(job).state == states.DEAD

    # Redriven again: a lease that is never started expires; the next attempt's commit
    # finds w2's effect already recorded and absorbs it.
    queue.redrive(job, reason="tour", by="operator")
    queue.lease("w1")
    clock.advance(30.0)
    assert queue.reap() == [job]
    lease = queue.lease("w1")
    queue.start(lease)
    queue.commit(lease, effect)
    queue.ack(lease)
    assert invariants.check(store, final=True) == []

    # The intent log on the same store: an intent recorded, a note on it, a derived view
    # rebuilt (its jobs stay queued: the tour is over).
    intent = record(queue, "order.placed", {"order": 7})
    annotate(queue, "intent", intent, "checked by hand", author="operator")
    clusters.rebuild(store, clock.now())

    # The simulator's fault notes: a pause, a clock jump, a crash.
    def send_welcome(job: Job) -> Effect:
        return Effect(sink="mail", key=f"welcome-{job.payload['user']}")

    faults = FaultPlan(
        (
            PauseAfter("leased", 1.0, worker="w1"),
            AdvanceClock("started", 0.5, worker="w1"),
            CrashAfter("committed", worker="w1"),
        )
    )
    simulated = Simulation(
        1,
        Scenario(
            jobs=(JobSpec("send_welcome", {"user": 42}),),
            handlers={"send_welcome": send_welcome},
            workers=("w1",),
            policies=GUARDED,
            faults=faults,
        ),
    ).run()
    assert simulated.violations == []

    return (
        *store.events(),
        *simulated.events,
        *fm001.run(GUARDED.without("commit_boundary")).events,
        *fm011.run(GUARDED).events,  # an account opened, credits read and written back
        *fm006.run(GUARDED).events,  # a dependency declared, calls refused and served
        *fm010.run(GUARDED).events,  # a worker's wall clock stepped
    )


def test_every_logged_move_is_drawn_on_the_arrow_labelled_with_its_event():
    diagrams = state_diagrams(read("02_state_model.md"))
    logged = set()
    for event in tour():
        for machine, key in (("job", "job_state"), ("execution", "execution_state")):
            if key in event.detail:
                before, after = event.detail[key]
                logged.add((machine, (before, after), event.type))

    for machine, move, event_type in logged:
        labels = diagrams[machine].get(move, set())
        assert event_type in labels, (
            f"{event_type} moves the {machine} {move}; the arrow says {labels}"
        )
    every_transition = {("job", t) for t in states.JOB_TRANSITIONS} | {
        ("execution", t) for t in states.EXECUTION_TRANSITIONS
    }
    assert {(machine, move) for machine, move, _ in logged} == every_transition, (
        "the tour no longer takes every transition: extend tour()"
    )


def test_the_event_table_lists_exactly_the_event_types_the_runtime_logs():
    rows = [line for line in read("02_state_model.md").splitlines() if line.startswith("| `")]
    listed = [
        name for row in rows for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split("|")[1])
    ]

    assert len(listed) == len(set(listed)), "an event type is listed twice"
    assert set(listed) == {event.type for event in tour()}


# --- (3) the policies ------------------------------------------------------------------


def test_each_lever_has_a_section_naming_its_failure_mode_and_invariants():
    sections = [
        (match.group(1), body)
        for heading, body in h2_sections(read("03_policies.md"))
        if (match := re.fullmatch(r"Lever: `(\w+)`", heading))
    ]

    assert [lever for lever, _ in sections] == list(LEVERS)
    for lever, body in sections:
        owners = [fm for fm in catalog.discover() if fm.meta.lever == lever]
        assert owners, f"no failure mode has the lever {lever}"
        for fm in owners:
            assert f"fmlab run {fm.meta.id} --policy baseline" in body, fm.meta.id
            for inv in fm.meta.invariants:
                assert inv in body, f"the {lever} section does not name {inv}"


def test_each_tunable_is_listed_with_its_default():
    tunables = [field.name for field in fields(Policies) if field.name not in LEVERS]
    [body] = [
        body for heading, body in h2_sections(read("03_policies.md")) if heading == "Tunables"
    ]

    assert re.findall(r"^\| `(\w+)` \|", body, flags=re.MULTILINE) == tunables
    for name in tunables:
        assert f"| `{name}` | {getattr(GUARDED, name)} |" in body, name


def test_the_faults_section_names_every_fault_and_every_step():
    [body] = [body for heading, body in h2_sections(read("03_policies.md")) if "Faults" in heading]

    for fault in typing.get_args(Fault):
        assert f"`{fault.__name__}(" in body, fault.__name__
    for step in STEPS + ENDINGS:
        assert f"`{step}`" in body, step


# --- every example is real output ------------------------------------------------------


def tidy(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.rstrip("\n").splitlines())


def printed_by(run: typing.Callable[[], object]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run()
    return tidy(buffer.getvalue())


def console(body: str) -> str:
    """Run each `$ fmlab ...` line of a console block; the block as it should read."""
    lines = []
    for line in body.splitlines():
        if line.startswith("$ "):
            program, *argv = shlex.split(line.removeprefix("$ "))
            assert program == "fmlab", f"only fmlab commands run in the docs: {line!r}"
            lines += [line, printed_by(lambda argv=argv: cli.main(argv))]
    return "\n".join(lines)


def examples(path: Path) -> list[tuple[re.Match[str], str]]:
    """Run a chapter's examples in order; pair each output block with what its code prints.

    The ```python blocks run in one namespace per chapter, like a notebook, and a block that
    prints is followed by a ```text block showing it. A ```console block holds `$ fmlab`
    commands, each followed by its output.
    """
    namespace: dict[str, object] = {"__name__": f"docs.{path.stem}"}
    printed: str | None = None
    pairs = []
    for block in FENCE.finditer(path.read_text()):
        language, body = block.groups()
        if language == "python":
            assert printed is None, f"{path.name}: a block printed but no output follows it"
            code = compile(body, str(path), "exec")
            printed = printed_by(lambda code=code: exec(code, namespace)) or None
        elif language == "text":
            assert printed is not None, f"{path.name}: output shown for code that prints none"
            pairs.append((block, printed))
            printed = None
        elif language == "console":
            pairs.append((block, console(body)))
    assert printed is None, f"{path.name}: the last block printed but no output follows it"
    return pairs


WITH_EXAMPLES = [
    path for path in chapters() if re.search(r"^```(python|console)$", path.read_text(), re.M)
]


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=lambda path: path.stem)
def test_every_example_shows_what_its_code_prints(path):
    pairs = examples(path)

    assert pairs, f"{path.name} has code but no output to check"
    for block, printed in pairs:
        assert tidy(block.group(2)) == printed, f"{path.name} is stale; run {REGENERATE}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    for path in WITH_EXAMPLES:
        text = path.read_text()
        for block, printed in reversed(examples(path)):
            text = text[: block.start(2)] + printed + "\n" + text[block.end(2) :]
        path.write_text(text)
        print(f"wrote {path.relative_to(DOCS.parent)}")


# --- (5) the curriculum ----------------------------------------------------------------


def test_the_curriculum_teaches_every_failure_mode_once_with_its_habit():
    """The teaching order is written by hand, so a new failure mode must be placed in it."""
    text = read("07_curriculum.md")
    items = re.findall(
        r"^\d+\. \*\*\[(FM_\d{3})\]\(\.\./failure_modes/([^/]+)/spec\.md\)", text, re.M
    )

    assert sorted(fm for fm, _ in items) == sorted(fm.meta.id for fm in catalog.discover())
    for fm, folder in items:
        assert folder.startswith(fm), (fm, folder)
    numbers = [int(n) for n in re.findall(r"^(\d+)\. \*\*\[FM_", text, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    assert text.count("*Habit:") == len(items)
