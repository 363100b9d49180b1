"""Opening the store a URL names, as ``--store`` does on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..targets import TargetError
from ._memory import MemoryStore
from ._sqlite import SqliteStore

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["open_store"]


def open_store(url: str, *, existing: bool = False) -> Store:
    """The store ``url`` names: ``memory``, ``sqlite:///path`` or ``postgresql://...``.

    ``existing``: the store must be there already (commands that read what a
    store recorded): a mistyped SQLite path is an error, not a new empty
    database.

    :raises TargetError: for any other URL, or a missing ``existing`` store.
    """
    if url == "memory":
        if existing:
            raise TargetError(
                "the memory store keeps nothing between processes: name the store runs "
                "were recorded in (sqlite:///path/to/runs.db or postgresql://...)"
            )
        return MemoryStore()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if existing and not Path(path).is_file():
            raise TargetError(
                f"no store at {url}: {path!r} does not exist (check the path; a store is "
                "made by the process that records runs, e.g. anyflow serve --store)"
            )
        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresStore

        return PostgresStore(url)
    raise TargetError(
        f"unknown store {url!r}: use memory, sqlite:///path/to/runs.db or postgresql://..."
    )
