"""``SqliteStore``: the embedded default store, one SQLite file on this host.

Why SQLite: it needs no server, and in WAL mode several processes of one host
can share the file (readers never wait for the writer).  Every write starts
with ``BEGIN IMMEDIATE``, which takes the file's write lock before reading, so
``claim``'s read-check-write is atomic across processes; ``busy_timeout`` makes
a second writer wait for the lock instead of failing at once.

The stdlib driver blocks, so every call runs in a thread of the store's own
(``anyflow.runtime.threads.WorkerThread``), never on the event loop: the
same code runs under asyncio and trio.  One connection is enough for one
process, used by that one thread, which takes the calls in the order they
came; a ``threading.Lock`` guards the connection all the same.  A thread of
its own costs a store call about half the CPU of ``anyio.to_thread``'s pool
(one turn of the event loop instead of three).

The statements and the rules are ``SqlStore``'s (``_sql.py``), shared with
``PostgresStore``; this module holds what is SQLite's own: the file, its
pragmas and schema, the write lock, and how ``claim`` creates a run.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DurabilityError, StoreUnavailableError
from ..runtime.threads import WorkerThread
from ._sql import SqlStore, Statements

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._store import Owner

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

SCHEMA_VERSION = 1
"""Kept in ``PRAGMA user_version``; a file with a newer version is refused."""

_DURABILITY = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
"""``durability=`` to ``PRAGMA synchronous``.  In WAL mode: FULL syncs the log
at every commit (a committed tick survives power loss), NORMAL syncs at
checkpoints (survives a process crash, may lose the last commits on power
loss), OFF never syncs (tests and benchmarks only)."""

_BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    owner TEXT,
    lease_until REAL,
    state TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS runs_created_at ON runs (created_at, run_id);
CREATE TABLE IF NOT EXISTS ticks (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""


class SqliteStore(SqlStore[sqlite3.Connection]):
    """Keeps runs in the SQLite file ``path``, shared by the processes of this host.

    :param durability: ``"full"`` (the default: a committed tick survives power
        loss), ``"normal"`` (survives a crash of the process, not of the
        machine) or ``"off"`` (for tests and benchmarks).
    :raises ValueError: for any other ``durability``.

    The file is opened (and its tables made) on first use, so a store can be
    built outside an event loop.  Its directory must exist.
    """

    # BEGIN IMMEDIATE takes the file's write lock before a write transaction
    # reads, which keeps every row as read: no row lock.  SQLite's BINARY
    # collation compares UTF-8 bytes, which is code point order.
    _sql = Statements(placeholder="?", lock_row="", run_id_order="run_id")

    def __init__(self, path: str | os.PathLike[str], *, durability: str = "full") -> None:
        if durability not in _DURABILITY:
            raise ValueError(
                f"durability={durability!r} is not a durability level of SqliteStore: "
                f"choose one of {', '.join(map(repr, _DURABILITY))}"
            )
        self._path = os.fspath(path)
        self._durability = durability
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._thread = WorkerThread(f"anyflow SqliteStore {self._path}")

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r}, durability={self._durability!r})"

    # -- plumbing: everything below runs in a worker thread --------------------

    def _open(self) -> sqlite3.Connection:
        if self._path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self._path))
            if not os.path.isdir(parent):
                raise FileNotFoundError(
                    f"cannot open the SQLite store {self._path!r}: its directory {parent!r} "
                    "does not exist; create it first"
                )
        conn = sqlite3.connect(
            self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            mode = _use_wal(conn)
            if mode != "wal" and self._path != ":memory:":
                raise DurabilityError(
                    f"SQLite store {self._path!r} cannot use WAL journal mode (got {mode!r}); "
                    "put the file on a local file system"
                )
            conn.execute(f"PRAGMA synchronous = {_DURABILITY[self._durability]}")
            _in_transaction(conn, self._migrate)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise DurabilityError(
                f"SQLite store {self._path!r} has schema version {version}, newer than "
                f"this anyflow's {SCHEMA_VERSION}: upgrade anyflow to use it"
            )
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _locked(self, fn: Callable[[sqlite3.Connection], _T], write: bool) -> _T:
        with self._lock:
            conn = self._connection()
            return _in_transaction(conn, fn) if write else fn(conn)

    async def _call(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        try:
            return await self._thread.run(functools.partial(self._locked, fn, write))
        except sqlite3.OperationalError as exc:
            # A full disk, a file-size limit, a read-only file, a lock held
            # past busy_timeout: the call wrote nothing, and may work later.
            what = "write to" if write else "read"
            raise StoreUnavailableError(
                f"cannot {what} the SQLite store {self._path!r}: {exc} (free disk space, "
                "raise the file-size limit or fix the file's permissions; nothing was written)"
            ) from exc

    def _execute_many(
        self, conn: sqlite3.Connection, query: str, rows: Sequence[tuple[str, int, str]]
    ) -> None:
        conn.executemany(query, rows)

    def _find_or_create(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> tuple[Any, ...] | None:
        # BEGIN IMMEDIATE holds the file's write lock from this read to the
        # commit: no other process creates the run in between.
        row: tuple[Any, ...] | None = conn.execute(self._sql.read_run, (run_id,)).fetchone()
        if row is None:
            conn.execute(
                self._sql.create_run,
                (run_id, workflow, fingerprint, now, now, str(owner), lease_until),
            )
        return row

    # -- the contract: SqlStore's, but for ping and aclose -------------------------

    async def ping(self) -> None:
        def ping(conn: sqlite3.Connection) -> None:
            # Rewrites a header field: a real write, which fails as a
            # commit would when the file cannot grow or be written.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        await self._call(ping, write=True)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await self._thread.run(close)
        self._thread.close()


def _use_wal(conn: sqlite3.Connection) -> str:
    """Switch the file to WAL mode (it stays so) and return the mode it is in.

    The switch needs the file to itself, and SQLite reports "database is
    locked" at once, without waiting for ``busy_timeout``, when another
    connection opens the file at the same moment: so wait here.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
        else:
            return str(mode)


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``fn`` in a write transaction: the file's write lock is taken before
    the first read, so what ``fn`` reads stays true until it commits."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
