"""A prevent test's exploration, in one place: under the guard no seed violates anything,
and every mark the failure mode names was hit. A pass where the guard was never put to
work proves nothing, so the marks are part of the proof, not a check a test may forget."""

from failure_modes.catalog import Meta
from runtime.explore import Summary, explore
from runtime.shrink import Build


def explored_clean(build: Build, meta: Meta, seeds: range, *, jobs: int, workers: int) -> Summary:
    """Explore `seeds` of `build`; fail on any violation, or on a mark of `meta` never
    hit. Returns the summary, for a test's own further marks."""
    summary = explore(build, seeds, jobs=jobs, workers=workers)
    assert summary.failing == {}, summary.failing
    for mark in meta.marks:
        assert summary.marks[mark] > 0, f"{mark} never hit in seeds {seeds}"
    return summary
