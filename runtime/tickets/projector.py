"""The projector: the job handler that turns a ticket's projection job into its effect.

The job carries the ticket's state as of one version (runtime.tickets.model); the handler
makes that the job's effect on the read model's sink, and the runtime writes it at the
commit, through runtime.tickets.projection, which decides whether it is newer.
"""

from runtime.effects import Effect
from runtime.queue import Job
from runtime.tickets.model import PROJECT
from runtime.tickets.projection import SINK


def project(job: Job) -> Effect:
    """The projection job's handler. The effect's key is the job's own: a repeat of this
    job is absorbed by the runtime's commit boundary, and a second job carrying the same
    version is the projector's to absorb, by version."""
    return Effect(SINK, f"job-{job.id}", job.payload)


HANDLERS = {PROJECT: project}
