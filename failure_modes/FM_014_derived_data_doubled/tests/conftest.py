"""What both of FM_014's test files watch: the operator's rebuilds."""

import pytest

from runtime.observe import clusters
from runtime.sim import Simulation


@pytest.fixture
def rebuilds(monkeypatch):
    """Watch the operator: after each of its rebuilds, the cluster counts as stored and as
    a fresh computation from the log gives them. The scripted schedule runs unchanged."""
    seen = []
    rebuild = Simulation.rebuild

    def watched(sim: Simulation) -> None:
        rebuild(sim)
        stored = [c.failures for c in clusters.stored(sim.store)]
        seen.append((stored, [c.failures for c in clusters.compute(sim.store)]))

    monkeypatch.setattr(Simulation, "rebuild", watched)
    return seen
