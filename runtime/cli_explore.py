"""`fmlab explore`, `fmlab replay` and `fmlab determinism`: the simulator's commands.

Exit codes as for every fmlab command: 0 nothing violated, 1 an invariant was violated,
2 the input was wrong.
"""

import argparse
import sys

from runtime import report, timeline
from runtime.errors import UsageError
from runtime.explore import determinism, explore
from runtime.shrink import Case, replay, shrink

EXIT_OK, EXIT_VIOLATED = 0, 1


def _world(fm, args: argparse.Namespace) -> None:
    """Fill in the jobs and workers a person did not choose from the FM's own world."""
    jobs, workers = fm.meta.world
    args.jobs = jobs if args.jobs is None else args.jobs
    args.workers = workers if args.workers is None else args.workers


def explore_command(fm, args: argparse.Namespace) -> int:
    _world(fm, args)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    if args.save_tape is not None and args.save_tape.exists():
        raise UsageError(f"{args.save_tape}: already exists; give a new file for the tape")
    build = fm.build(args.policy)
    print(
        f"{fm.meta.id} {fm.meta.title} | policy {args.policy} | scheduler {args.scheduler} | "
        f"{report.world(Case(args.jobs, args.workers, ()))}"
    )
    summary = explore(
        build,
        seeds,
        jobs=args.jobs,
        workers=args.workers,
        scheduler=args.scheduler,
        processes=args.processes,
        progress=_progress_bar(fm.meta.id) if sys.stderr.isatty() else None,
    )
    print("\n".join(report.summary_lines(summary)))
    first = summary.first_failure
    if first is None:
        return EXIT_OK
    # The FM's own invariants first, in the order it names them: a liveness invariant
    # breaks only when a run's steps run out, so its shortest schedule is a long one.
    inv = next((i for i in fm.meta.invariants if i in first.violated), first.violated[0])
    shrunk = shrink(build, first.case(args.jobs, args.workers), inv, scheduler=args.scheduler)
    result = replay(build, shrunk.case, scheduler=args.scheduler, stop_on=inv)
    print("\n".join(report.shrunk_lines(first.seed, inv, shrunk)))
    print("decisions that matter:")
    print("\n".join(report.decision_lines(result.decisions())))
    if args.save_tape is not None:
        tape = report.TapeFile(
            fm.meta.id, args.policy, args.scheduler, shrunk.case, first.seed, inv
        )
        report.write_tape(args.save_tape, tape, result.decisions())
        print(f"replay it: fmlab replay {fm.meta.id} --tape {args.save_tape}")
    else:
        print(
            f"replay the unshrunk run: fmlab replay {fm.meta.id} --seed {first.seed} "
            f"--policy {args.policy} --scheduler {args.scheduler} "
            f"--jobs {args.jobs} --workers {args.workers}"
        )
    print()
    title = f"{fm.meta.id} shrunk schedule | policy {args.policy} | {shrunk.steps} steps"
    print(timeline.render(result.events, result.violations, args.format, title=title), end="")
    return EXIT_VIOLATED


def replay_command(args: argparse.Namespace) -> int:
    from failure_modes import catalog

    if args.tape is not None:
        tape = report.read_tape(args.tape)
        fm = catalog.find(tape.fm)
        policy, scheduler, case, seed = tape.policy, tape.scheduler, tape.case, None
        stop_on = tape.inv  # a shrunk tape was cut at its violation; so is its replay
        fm.policies(policy)  # an unknown policy in the file is a usage error
        if scheduler not in ("random", "pct"):
            raise UsageError(f"{args.tape}: unknown scheduler {scheduler!r}")
    else:
        fm = catalog.find(args.fm)
        _world(fm, args)
        policy, scheduler, seed = args.policy, args.scheduler, args.seed
        case, stop_on = Case(args.jobs, args.workers, ()), None
    build = fm.build(policy)
    if seed is not None:
        from runtime.sim import Simulation

        result = Simulation(seed, build(case.jobs, case.workers), scheduler=scheduler).run()
        source = f"seed {seed}"
    else:
        result = replay(build, case, scheduler=scheduler, stop_on=stop_on)
        source = f"tape {args.tape}"
    title = (
        f"{fm.meta.id} {fm.meta.title} | policy {policy} | scheduler {scheduler} | {source} | "
        f"{report.world(case)}"
    )
    print(timeline.render(result.events, result.violations, args.format, title=title), end="")
    return EXIT_VIOLATED if result.violations else EXIT_OK


def determinism_command(fm, args: argparse.Namespace) -> int:
    _world(fm, args)
    mismatches = determinism(
        fm.build(args.policy),
        range(args.seeds),
        jobs=args.jobs,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    print(f"{fm.meta.id}: {args.seeds} seeds run twice, {len(mismatches)} mismatches")
    for mismatch in mismatches[:10]:
        print(f"  seed {mismatch.seed}: the runs differ after step {mismatch.step}")
    return EXIT_VIOLATED if mismatches else EXIT_OK


def _progress_bar(name: str):
    def draw(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        print(
            f"\r{name} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} seeds",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )

    return draw
