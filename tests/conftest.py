"""Shared test settings: the Hypothesis profiles.

`ci` (chosen when the CI environment variable is set) is derandomized: the same examples
every run, no example database, and a failure prints the blob that reproduces it. `dev`
keeps Hypothesis's random search and its local example database, so a failure found once
is replayed first next time. Neither has a deadline: a slow shared runner is not a bug.
"""

import os

import pytest
from hypothesis import settings

from tests.backends import BACKENDS, Schemas, server_url, stores

settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True, max_examples=100
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    """Run the test on SQLite and on PostgreSQL: `support.new_store()` (and every queue
    `support.new_queue()` makes) is a fresh store on the backend of the run."""
    with stores(request.param):
        yield request.param


@pytest.fixture
def pg_schemas():
    """Fresh lab schemas on the PostgreSQL server (tests of PostgreSQL itself)."""
    schemas = Schemas(server_url())
    try:
        yield schemas
    finally:
        schemas.drop_all()
