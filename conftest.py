"""Fixtures every test folder shares (tests/ and each failure mode's tests/): the backends
a test can run on (tests/backends.py)."""

import pytest

from tests.backends import BACKENDS, Schemas, server_url, stores

pytest.register_assert_rewrite("failure_modes.proof")  # its failures show their values


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
