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
imports without it.  The semantics mirror ``MemoryStore`` (the reference)
rule for rule.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from ..errors import LeaseLostError, StoreUnavailableError
from ._store import (
    FINISHED,
    RunRecord,
    Store,
    StoredRun,
    lease_is_free,
    locked_error,
    unfinished_error,
)

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

_RUN_COLUMNS = "run_id, workflow, status, created_at, updated_at"
# Run ids sort by code point, as in MemoryStore and SQLite, whatever the
# database's collation.
_ORDER = 'ORDER BY created_at, run_id COLLATE "C"'


class PostgresStore(Store):
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
        with self._connection_pool().connection() as conn, conn.transaction():
            return fn(conn)

    async def _call(self, fn: Callable[[Connection[TupleRow]], _T]) -> _T:
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

    async def ping(self) -> None:
        def ping(conn: Connection[TupleRow]) -> None:
            conn.execute("SELECT 1")

        await self._call(ping)

    # -- the contract -----------------------------------------------------------

    async def claim(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> StoredRun:
        def claim(conn: Connection[TupleRow]) -> StoredRun:
            while True:
                inserted = conn.execute(
                    "INSERT INTO runs (run_id, workflow, fingerprint, status, created_at, "
                    "updated_at, owner, lease_until) "
                    "VALUES (%s, %s, %s, 'running', %s, %s, %s, %s) "
                    "ON CONFLICT (run_id) DO NOTHING",
                    (run_id, workflow, fingerprint, now, now, str(owner), lease_until),
                )
                if inserted.rowcount == 1:
                    record = RunRecord.from_row(run_id, workflow, "running", now, now)
                    return StoredRun(record, fingerprint, [], None, None, 0, True)
                row = conn.execute(
                    "SELECT workflow, fingerprint, status, created_at, updated_at, owner, "
                    "lease_until, state, outcome FROM runs WHERE run_id = %s FOR UPDATE",
                    (run_id,),
                ).fetchone()
                if row is not None:
                    break
                # A ``delete`` removed the finished run between the insert and
                # the lock: the id is free again, so create the run after all.
            wf, fp, status, created_at, updated_at, holder, held_until, state, outcome = row
            if status not in FINISHED:
                if not lease_is_free(holder, held_until, owner, now):
                    raise locked_error(run_id, holder, held_until, now)
                conn.execute(
                    "UPDATE runs SET owner = %s, lease_until = %s WHERE run_id = %s",
                    (str(owner), lease_until, run_id),
                )
            ticks = conn.execute(
                "SELECT seq, record FROM ticks WHERE run_id = %s ORDER BY seq", (run_id,)
            ).fetchall()
            counted = conn.execute(
                "SELECT COUNT(*) FROM events WHERE run_id = %s", (run_id,)
            ).fetchone()
            assert counted is not None
            record = RunRecord.from_row(run_id, wf, status, created_at, updated_at)
            return StoredRun(record, fp, ticks, state, outcome, counted[0], False)

        return await self._call(claim)

    async def append(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        def append(conn: Connection[TupleRow]) -> None:
            _lock_owned(conn, run_id, owner)
            _insert_new(conn, "ticks", run_id, ticks, "tick")
            _insert_new(conn, "events", run_id, events, "event")
            conn.execute(
                "UPDATE runs SET state = COALESCE(%s, state), updated_at = %s, "
                "lease_until = %s WHERE run_id = %s",
                (state, now, lease_until, run_id),
            )

        await self._call(append)

    async def finish(
        self,
        run_id: str,
        owner: Owner,
        status: str,
        outcome: str,
        events: Sequence[tuple[int, str]],
        now: float,
    ) -> None:
        def finish(conn: Connection[TupleRow]) -> None:
            _lock_owned(conn, run_id, owner)
            _insert_new(conn, "events", run_id, events, "event")
            conn.execute(
                "UPDATE runs SET status = %s, outcome = %s, updated_at = %s, owner = NULL, "
                "lease_until = NULL WHERE run_id = %s",
                (status, outcome, now, run_id),
            )

        await self._call(finish)

    async def release(self, run_id: str, owner: Owner) -> None:
        def release(conn: Connection[TupleRow]) -> None:
            conn.execute(
                "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = %s AND owner = %s",
                (run_id, str(owner)),
            )

        await self._call(release)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        def read_events(conn: Connection[TupleRow]) -> list[tuple[int, str]]:
            rows = conn.execute(
                "SELECT seq, record FROM events WHERE run_id = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                (run_id, after, limit),
            ).fetchall()
            return [(seq, record) for seq, record in rows]

        return await self._call(read_events)

    async def read_ticks(self, run_id: str) -> list[tuple[int, str]]:
        def read_ticks(conn: Connection[TupleRow]) -> list[tuple[int, str]]:
            rows = conn.execute(
                "SELECT seq, record FROM ticks WHERE run_id = %s ORDER BY seq", (run_id,)
            ).fetchall()
            return [(seq, record) for seq, record in rows]

        return await self._call(read_ticks)

    async def get_run(self, run_id: str) -> RunRecord | None:
        def get_run(conn: Connection[TupleRow]) -> RunRecord | None:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            return None if row is None else RunRecord.from_row(*row)

        return await self._call(get_run)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        def list_runs(conn: Connection[TupleRow]) -> list[RunRecord]:
            conditions, params = [], []
            for column, value in (("workflow", workflow), ("status", status)):
                if value is not None:
                    conditions.append(f"{column} = %s")
                    params.append(value)
            where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where}{_ORDER}",
                params,
            ).fetchall()
            return [RunRecord.from_row(*row) for row in rows]

        return await self._call(list_runs)

    async def delete(self, run_id: str) -> bool:
        def delete(conn: Connection[TupleRow]) -> bool:
            # The row lock, held to the commit, keeps the run as checked:
            # ``claim``, ``append`` and ``finish`` take it before they read.
            row = conn.execute(
                "SELECT status FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)
            ).fetchone()
            if row is None:
                return False
            if row[0] not in FINISHED:
                raise unfinished_error(run_id)
            conn.execute("DELETE FROM ticks WHERE run_id = %s", (run_id,))
            conn.execute("DELETE FROM events WHERE run_id = %s", (run_id,))
            conn.execute("DELETE FROM runs WHERE run_id = %s", (run_id,))
            return True

        return await self._call(delete)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._closed = True
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.close()

        await anyio.to_thread.run_sync(close)


def _lock_owned(conn: Connection[TupleRow], run_id: str, owner: Owner) -> None:
    """Lock the run's row, or raise LeaseLostError if ``owner`` does not hold its lease."""
    row = conn.execute(
        "SELECT owner, status FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)
    ).fetchone()
    if row is None or row[0] != str(owner) or row[1] in FINISHED:
        holder = "nobody" if row is None or row[0] is None else row[0]
        raise LeaseLostError(
            f"run {run_id!r} is not leased to {owner} any more (held by {holder}); "
            "this process stops executing it"
        )


def _insert_new(
    conn: Connection[TupleRow],
    table: str,
    run_id: str,
    records: Sequence[tuple[int, str]],
    kind: str,
) -> None:
    """Insert ``records`` into ``table`` (``"ticks"`` or ``"events"``), or raise
    LeaseLostError if one of their numbers is taken (the caller's transaction
    then rolls back whatever it wrote).  The caller holds the run's row lock,
    so nobody adds records in between.  A number repeated within the batch
    keeps its last record, as in ``MemoryStore``."""
    if not records:
        return
    batch = dict(records)
    query = f"SELECT seq FROM {table} WHERE run_id = %s AND seq BETWEEN %s AND %s"
    taken = {seq for (seq,) in conn.execute(query, (run_id, min(batch), max(batch)))}
    for seq, _ in records:
        if seq in taken:
            raise LeaseLostError(
                f"{kind} {seq} of run {run_id!r} is recorded already: another process "
                "wrote this run; this process stops executing it"
            )
    insert = f"INSERT INTO {table} (run_id, seq, record) VALUES (%s, %s, %s)"
    with conn.cursor() as cursor:
        cursor.executemany(insert, [(run_id, seq, text) for seq, text in batch.items()])
