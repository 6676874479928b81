"""The crash torture's job: work that takes a while, then one effect, keyed by its job.

The handler sleeps (real time: this runs in a real worker process, outside the runtime's
deterministic fence) so that a SIGKILL lands in the middle of the work as often as
between steps. Its effect is recorded on the sink `torture`, keyed by the job: an effect
applied twice for one job is a duplicate INV_001 reports.
"""

import time

from runtime.effects import Effect
from runtime.queue import Job

KIND = "torture.work"
SINK = "torture"


def work(job: Job) -> Effect:
    time.sleep(job.payload["ms"] / 1000)
    return Effect(SINK, f"job-{job.id}", {"ms": job.payload["ms"]})


HANDLERS = {KIND: work}
