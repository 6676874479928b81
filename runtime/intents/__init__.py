"""An intent-first system on the runtime: the user's intent is durable before anything
else happens, and everything after it may fail, retry and recover on its own.

`record` appends the intent and, in the same transaction, the jobs that follow from it: a
projection into derived domain state, and a sync to an outside target that fails when it
likes. The intent never changes and is never deleted; what happened to it afterwards is
derived from the jobs and the event log (`lifecycle`), and an operator's remarks are
appended beside it (`annotate`), never written into it.
"""
