from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from anyflow.durable import MemoryStore, PostgresStore, SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from anyflow.durable import Store

settings.register_profile(
    "tests", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=25, deadline=None)
settings.register_profile("soak", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("ANYFLOW_HYPOTHESIS_PROFILE", "tests"))


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every concurrency test runs on asyncio (in debug mode) and on trio."""
    return request.param  # type: ignore[no-any-return]


# Stores.  PostgreSQL is the server at ANYFLOW_TEST_POSTGRES_URL; its tests are
# skipped, with the reason, only when it cannot be reached.

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


def postgres_stores(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Stores in one new schema, dropped after the test."""
    import psycopg
    from psycopg import sql

    url: str = request.getfixturevalue("postgres_url")
    schema = f"anyflow_test_{uuid.uuid4().hex[:12]}"
    yield lambda: PostgresStore(url, schema=schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def stores_of_kind(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Store]]:
    if kind == "memory":
        yield MemoryStore
    elif kind == "sqlite":
        yield lambda: SqliteStore(tmp_path / "runs.db", durability="off")
    else:
        yield from postgres_stores(request)


@pytest.fixture(params=["sqlite", "postgres"])
def shared_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Makes stores on the same data, like the stores of several processes."""
    yield from stores_of_kind(request.param, request, tmp_path)
