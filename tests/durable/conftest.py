"""Fixtures that run one test against every store.

``store`` is a fresh, empty store of each kind: the reference ``MemoryStore``,
a ``SqliteStore`` in a temporary directory, and a ``PostgresStore`` in a
schema of its own (dropped afterwards); see ``tests/conftest.py`` for
``postgres_url`` and ``shared_stores``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import stores_of_kind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from anyflow.durable._store import Store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Makes empty stores of each kind (a call per store; they need not share data)."""
    yield from stores_of_kind(request.param, request, tmp_path)


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind, closed after the test."""
    async with store_factory() as opened:
        yield opened
