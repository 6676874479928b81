"""Shared test settings: the Hypothesis profiles.

`ci` (chosen when the CI environment variable is set) is derandomized: the same examples
every run, no example database, and a failure prints the blob that reproduces it. `dev`
keeps Hypothesis's random search and its local example database, so a failure found once
is replayed first next time. Neither has a deadline: a slow shared runner is not a bug.
"""

import os

from hypothesis import settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True, max_examples=100
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
