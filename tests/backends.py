"""The two backends a test can run on: SQLite (in memory) and PostgreSQL (a schema of its
own on the server `make pg-up` started, named by FMLAB_PG_URL).

A test that takes the `backend` fixture runs once on each. Without a server it is skipped
with the reason, when run by hand; under CI (the CI variable set) a missing server fails
the run instead, so CI can never pass without having tested PostgreSQL.
"""

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from runtime.pg_store import PgStore, in_schema
from runtime.stores import AnyStore
from tests import support

BACKENDS = ("sqlite", "postgresql")
_NUMBERS = itertools.count(1)


def server_url() -> str:
    """The PostgreSQL server's URL; skips (fails, under CI) when there is none."""
    url = os.environ.get("FMLAB_PG_URL", "")
    if url:
        return url
    reason = "no PostgreSQL server: FMLAB_PG_URL is unset (make pg-up, then make test)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must test PostgreSQL too; {reason}")
    pytest.skip(reason)


class Schemas:
    """Fresh, empty lab schemas on one server, each its own lab database; all dropped at
    the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._admin = psycopg.connect(url, autocommit=True)
        self._made: list[str] = []

    def new_url(self) -> str:
        name = f"fmlab_test_{os.getpid()}_{next(_NUMBERS)}"
        self._admin.execute(f"CREATE SCHEMA {name}")
        self._made.append(name)
        return in_schema(self.url, name)

    def new_store(self) -> PgStore:
        return PgStore.open(self.new_url())

    def drop_all(self) -> None:
        for name in self._made:
            self._admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        self._admin.close()


@contextmanager
def stores(backend: str) -> Iterator[Callable[[], AnyStore]]:
    """A maker of fresh stores on `backend`, and `support.new_store` pointed at it."""
    if backend == "sqlite":
        yield support.new_store
        return
    schemas = Schemas(server_url())
    support.STORES = schemas.new_store
    try:
        yield schemas.new_store
    finally:
        support.STORES = support.memory_store
        schemas.drop_all()
