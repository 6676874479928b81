"""A support-ticket service that keeps its write model and its read model apart (CQRS).

- `model`: the write model, the source of truth. A command changes one ticket, appends
  the change to the ticket's history and enqueues the ticket's projection job, all in one
  transaction (a transactional outbox): a saved change always gets projected.
- `projector`: the projection job's handler on the runtime's queue; `projection`: the
  write it makes at the commit. A job carries the ticket's state as of one version, and
  the write goes to the read model only when that version is newer than what the read
  model holds, in one statement, so a duplicate or a late delivery changes nothing.
  Retries and dead letters are the runtime's.
- `views`: the read model, derived and disposable, and its rebuild by replay, which
  builds a shadow table from the write model and swaps it in whole.
- `lag`: the consistency contract (`READ_LAG_MS`) and how far the read model really is
  behind the write model.
- `api`: the HTTP API over all of it.

Chapter 09 tells the failure modes each guard is for.
"""
