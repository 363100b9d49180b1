"""``PostgresStore``: the store for runs shared by processes on several hosts.

Why the sync driver in threads: psycopg's async API runs on asyncio only, and
anyflow runs on trio too.  psycopg 3's sync API in anyio worker threads works
the same under both, with a ``psycopg_pool.ConnectionPool`` so that calls of
several runs proceed in parallel (a ``CapacityLimiter`` as large as the pool
keeps extra callers waiting in async land, not in parked threads).

Every method is one transaction.  ``claim`` creates the row with ``INSERT ...
ON CONFLICT DO NOTHING`` and then locks it with ``SELECT ... FOR UPDATE``, so
two processes claiming one run are serialized by the row lock; ``append``,
``finish`` and ``delete`` take the same lock before checking the run.

psycopg is imported when a store is built, not with this module, so anyflow
imports without it.  The statements and the rules are ``SqlStore``'s
(``_sql.py``), shared with ``SqliteStore``; this module holds what is
PostgreSQL's own: the pool, the schema, the row lock, and how ``claim``
creates a run.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from ..errors import StoreUnavailableError
from ._sql import SqlStore, Statements

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from psycopg import Connection
    from psycopg.rows import TupleRow
    from psycopg_pool import ConnectionPool

    from ._store import Owner

__all__ = ["PostgresStore"]

_T = TypeVar("_T")

_SCHEMA_LOCK = 0x616E79666C6F77  # "anyflow": serializes concurrent table creation
"""``pg_advisory_xact_lock`` key: ``CREATE ... IF NOT EXISTS`` is not safe
against a concurrent identical statement, so stores starting together take turns."""

_TABLES = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        owner TEXT,
        lease_until DOUBLE PRECISION,
        state TEXT,
        outcome TEXT
    )""",
    'CREATE INDEX IF NOT EXISTS runs_created_at ON runs (created_at, run_id COLLATE "C")',
    """CREATE TABLE IF NOT EXISTS ticks (
        run_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
)

_STATEMENTS = Statements(
    placeholder="%s",
    # A transaction that changes a run locks its row before reading it:
    # ``claim``, ``append``, ``finish`` and ``delete`` of one run take turns.
    lock_row=" FOR UPDATE",
    # Run ids sort by code point, as in MemoryStore and SQLite, whatever the
    # database's collation.
    run_id_order='run_id COLLATE "C"',
)
_CREATE_IF_MISSING = _STATEMENTS.create_run + " ON CONFLICT (run_id) DO NOTHING"


class PostgresStore(SqlStore["Connection[TupleRow]"]):
    """Keeps runs in the PostgreSQL database at ``url`` (a libpq URL or conninfo).

    :param max_connections: the most connections the store opens at once.
    :param schema: put the tables in this schema (made if missing) instead of
        the first of the connection's ``search_path``: to keep the runs of
        several tenants, or of tests, apart in one database.
    :param timeout: seconds a call waits to connect, or for a free
        connection, before it fails with ``StoreUnavailableError`` (an
        unreachable database fails calls quickly instead of holding them).
    :raises ImportError: if psycopg is not installed.

    Connections are opened (and the tables made) on first use, so a store can
    be built outside an event loop.
    """

    _sql = _STATEMENTS

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 4,
        schema: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections={max_connections!r}: a store needs at least 1")
        if timeout <= 0:
            raise ValueError(f"timeout={timeout!r}: seconds > 0")
        try:
            import psycopg  # noqa: F401 - fail here, not at first use
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "PostgresStore needs psycopg 3 and psycopg-pool: pip install 'anyflow[postgres]'"
            ) from exc
        self._url = url
        self._max_connections = max_connections
        self._schema = schema
        self._timeout = timeout
        self._pool: ConnectionPool[Connection[TupleRow]] | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(max_connections)

    def __repr__(self) -> str:
        # The URL may carry a password: not shown.
        return f"PostgresStore(max_connections={self._max_connections}, schema={self._schema!r})"

    # -- plumbing: everything below runs in a worker thread --------------------

    def _configure(self, conn: Connection[TupleRow]) -> None:
        if self._schema is not None:
            from psycopg import sql

            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            conn.commit()

    def _create_tables(self, conn: Connection[TupleRow]) -> None:
        from psycopg import sql

        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self._schema is not None:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema))
                )
            for statement in _TABLES:
                conn.execute(statement)

    def _connection_pool(self) -> ConnectionPool[Connection[TupleRow]]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if self._pool is None:
                import psycopg
                from psycopg_pool import ConnectionPool

                # One plain connection first: a server that cannot be reached
                # fails here with psycopg's own message, not a pool timeout.
                # libpq counts connect_timeout in whole seconds (at least 2).
                connect_timeout = max(2, round(self._timeout))
                with psycopg.connect(self._url, connect_timeout=connect_timeout) as conn:
                    self._configure(conn)
                    self._create_tables(conn)
                pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._max_connections,
                    open=False,
                    configure=self._configure,
                    kwargs={"connect_timeout": connect_timeout},
                    timeout=self._timeout,
                    name="anyflow",
                )
                try:
                    pool.open(wait=True, timeout=self._timeout)
                except BaseException:
                    pool.close()  # its workers would go on trying to connect
                    raise
                self._pool = pool
            return self._pool

    def _transaction(self, fn: Callable[[Connection[TupleRow]], _T]) -> _T:
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._connection_pool()
        try:
            with pool.connection() as conn, conn.transaction():
                return fn(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout):
            self._discard(pool)
            raise

    def _discard(self, pool: ConnectionPool[Connection[TupleRow]]) -> None:
        """Close a pool whose connection failed, so the next call opens a new one.

        After an outage the pool's own workers reconnect with a growing back-off
        (seconds, then tens of seconds), so calls would time out for a while
        after the database is back.  A new pool starts with a plain connection,
        which works as soon as the database does.  Calls still holding the old
        pool fail like calls during the outage (the store is unavailable; they
        are retried).
        """
        with self._lock:
            if self._pool is not pool:
                return  # another call has replaced it already
            self._pool = None
        pool.close(timeout=0)

    async def _call(self, fn: Callable[[Connection[TupleRow]], _T], *, write: bool) -> _T:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            return await anyio.to_thread.run_sync(self._transaction, fn, limiter=self._limiter)
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            # The database is unreachable, restarting, or its connection was
            # cut: the transaction did not commit, and may work later.
            reason = " ".join(str(exc).split()) or type(exc).__name__  # one line
            raise StoreUnavailableError(
                f"the PostgreSQL store cannot be reached: {reason}"
            ) from exc

    def _execute_many(
        self, conn: Connection[TupleRow], query: str, rows: Sequence[tuple[str, int, str]]
    ) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(query, rows)

    def _find_or_create(
        self,
        conn: Connection[TupleRow],
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> tuple[Any, ...] | None:
        while True:
            inserted = conn.execute(
                _CREATE_IF_MISSING,
                (run_id, workflow, fingerprint, now, now, str(owner), lease_until),
            )
            if inserted.rowcount == 1:
                return None
            row = conn.execute(self._sql.read_run, (run_id,)).fetchone()
            if row is not None:
                return row
            # A ``delete`` removed the finished run between the insert and
            # the lock: the id is free again, so create the run after all.

    # -- the contract: SqlStore's, but for ping and aclose -------------------------

    async def ping(self) -> None:
        def ping(conn: Connection[TupleRow]) -> None:
            conn.execute("SELECT 1")

        await self._call(ping, write=False)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._closed = True
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.close()

        await anyio.to_thread.run_sync(close)
