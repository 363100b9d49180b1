"""Fixtures that run one test against every store.

``store`` is a fresh, empty store of each kind: the reference ``MemoryStore``,
a ``SqliteStore`` in a temporary directory, and a ``PostgresStore`` in a
schema of its own (dropped afterwards) of the server at
``ANYFLOW_TEST_POSTGRES_URL``.  PostgreSQL tests are skipped, with the reason,
only when that server cannot be reached.

``shared_stores`` makes stores that see the same data, as two processes do:
the stores that can be shared, SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest

from anyflow.durable._memory import MemoryStore
from anyflow.durable._postgres import PostgresStore
from anyflow.durable._sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from anyflow.durable._store import Store

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL; skips the test if it cannot be reached."""
    url = os.environ.get("ANYFLOW_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")
    return url


def _postgres_stores(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Stores in one new schema, dropped after the test."""
    import psycopg
    from psycopg import sql

    url: str = request.getfixturevalue("postgres_url")
    schema = f"anyflow_test_{uuid.uuid4().hex[:12]}"
    yield lambda: PostgresStore(url, schema=schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _stores(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Store]]:
    if kind == "memory":
        yield MemoryStore
    elif kind == "sqlite":
        yield lambda: SqliteStore(tmp_path / "runs.db", durability="off")
    else:
        yield from _postgres_stores(request)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Makes empty stores of each kind (a call per store; they need not share data)."""
    yield from _stores(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def shared_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Makes stores on the same data, like the stores of several processes."""
    yield from _stores(request.param, request, tmp_path)


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind, closed after the test."""
    async with store_factory() as opened:
        yield opened
