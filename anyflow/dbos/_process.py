"""``DBOSProcess``: DBOS in this process, from launch to shutdown.

DBOS is one per process.  A ``DBOSRuntime`` given a ``database_url`` configures
and launches it (and destroys it when its block ends); without one, it uses
the DBOS instance the application launched, and leaves it running.  Either
way this process's ``DBOSRuntime`` is the one host of the runs' DBOS
workflows (``_bridge.set_host``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from dbos import DBOS

from ..errors import DurabilityError
from . import _bridge

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DBOSProcess", "require_asyncio"]


class DBOSProcess:
    """Launches DBOS (or checks that the application did), and shuts it down."""

    __slots__ = (
        "application_version",
        "database_url",
        "dbos_config",
        "executor_id",
        "launched",
        "name",
    )

    def __init__(
        self,
        name: str,
        database_url: str | None,
        executor_id: str | None,
        application_version: str,
        dbos_config: Mapping[str, Any] | None,
    ) -> None:
        self.name = name
        self.database_url = database_url
        self.executor_id = executor_id or f"anyflow-{uuid.uuid4().hex[:12]}"
        self.application_version = application_version
        self.dbos_config = dict(dbos_config or {})
        self.launched = False
        """Whether this launched DBOS (and so destroys it at ``stop``)."""

    async def start(self, host: _bridge.Host) -> None:
        """Make ``host`` the host of the runs' DBOS workflows, and have DBOS
        running: launched here, or by the application.

        :raises DurabilityError: if DBOS cannot open its database.
        :raises RuntimeError: if another host is running in this process, or
            the application's DBOS is not launched.
        """
        require_asyncio()
        if _bridge.host() is not None:
            raise RuntimeError(
                "another DBOSRuntime is running in this process: DBOS is one per process, "
                "so is DBOSRuntime; share that one"
            )
        _bridge.set_host(host)
        try:
            if self.database_url is not None:
                await self._launch(self.database_url)
            elif not _dbos_launched():
                raise RuntimeError(
                    "DBOSRuntime without database_url uses the application's DBOS, and "
                    "DBOS is not launched: call DBOS(config=...) and DBOS.launch() first, "
                    "or pass database_url= and let the runtime launch it"
                )
            else:
                self.executor_id = _dbos_executor_id()
        except BaseException:
            await self.stop()
            raise
        logging.getLogger("dbos").addFilter(_QUIET)

    async def _launch(self, database_url: str) -> None:
        config: Any = {
            "enable_otlp": False,
            **self.dbos_config,
            "name": self.name,
            "system_database_url": database_url,
            "executor_id": self.executor_id,
            "application_version": self.application_version,
        }
        DBOS(config=config)
        self.launched = True
        path = _sqlite_path(database_url)
        if path is not None:
            await anyio.to_thread.run_sync(_use_wal, path)
        try:
            await anyio.to_thread.run_sync(DBOS.launch)
        except Exception as exc:
            raise DurabilityError(
                f"DBOS could not open its system database at {_redacted(database_url)}: "
                f"{exc}. Check that the database server runs and the URL is right "
                "(sqlite:///path/app.db or postgresql://user@host:5432/dbname)"
            ) from exc

    async def stop(self) -> None:
        """No host any more; DBOS destroyed if it was launched here."""
        _bridge.set_host(None)
        if self.launched:
            self.launched = False
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(DBOS.destroy)
        logging.getLogger("dbos").removeFilter(_QUIET)


class _QuietCancellation(logging.Filter):
    """Drops DBOS's warning that a workflow task was cancelled: a runtime
    leaving its block cancels the DBOS workflows of its unfinished runs on
    purpose (that is what leaves them pending, to be resumed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Asyncio task cancelled for workflow")


_QUIET = _QuietCancellation()


def _sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for another database, or memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _use_wal(path: str) -> None:
    """Put the SQLite file in write-ahead-log mode before DBOS opens it.

    DBOS leaves a new file in rollback-journal mode, where every commit
    creates, syncs and deletes a journal file: a recorded step then costs
    about 3 ms instead of 2 (``python -m benchmarks dbos``).  The mode stays
    with the file; readers in other processes keep working, as WAL allows.
    """
    import sqlite3

    with contextlib.suppress(sqlite3.Error):  # DBOS reports a bad path itself
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()


def _redacted(url: str) -> str:
    """``url`` without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{place}"


def _dbos_launched() -> bool:
    from dbos import _dbos

    instance = _dbos._dbos_global_instance
    return instance is not None and bool(instance._launched)


def _dbos_executor_id() -> str:
    from dbos._utils import GlobalParams

    return str(GlobalParams.executor_id)


def require_asyncio() -> None:
    """Refuse trio (or any loop but asyncio): DBOS's async API needs asyncio.

    :raises RuntimeError: naming the alternative.
    """
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    if library != "asyncio":
        raise RuntimeError(
            f"DBOSRuntime runs on asyncio only, and this is {library}: DBOS's async API "
            "needs an asyncio event loop (on trio, every DBOS *_async call fails with "
            "'no running event loop'). On trio, use anyflow.durable.DurableRuntime, which "
            "keeps runs in SQLite or PostgreSQL with the same resume semantics"
        )
