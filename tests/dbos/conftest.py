"""DBOSRuntime's tests: DBOS is a process-wide singleton on asyncio, so these
tests run on asyncio only (``test_trio_is_refused`` shows why), against SQLite
and PostgreSQL system databases made fresh for each test."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("dbos", reason="DBOSRuntime needs the anyflow[dbos] extra")

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("asyncio", {"debug": True})


@pytest.fixture(autouse=True)
def _quiet_dbos() -> None:
    # DBOS logs every launch and shutdown at INFO; tests only want its warnings.
    logging.getLogger("dbos").setLevel(logging.WARNING)


def new_postgres_database(postgres_url: str) -> tuple[str, str]:
    """A name for a new database on the test server, and its URL (DBOS creates it)."""
    name = f"anyflow_dbos_{uuid.uuid4().hex[:12]}"
    base, _, _ = postgres_url.rpartition("/")
    return name, f"{base}/{name}"


def drop_postgres_database(postgres_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A DBOS system database of its own for the test: a SQLite file, or a new
    PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dbos.db'}"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    name, url = new_postgres_database(postgres_url)
    yield url
    drop_postgres_database(postgres_url, name)
