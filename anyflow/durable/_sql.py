"""The store contract in SQL, written once for ``SqliteStore`` and ``PostgresStore``.

``SqlStore`` holds the statements and the rules the SQL stores share: claim,
create, append, append_and_finish, finish, release, the reads and delete,
each one transaction.  A
dialect (a subclass in ``_sqlite.py`` or ``_postgres.py``) holds only what
differs between the two databases, and every difference has a name:

* ``Statements(placeholder=...)``: the parameter placeholder (``?`` for
  sqlite3, ``%s`` for psycopg).  The statements below are written with ``?``
  and adapted once per dialect.
* ``Statements(lock_row=...)``: how a transaction keeps a run's row as it read
  it until it commits.  SQLite needs nothing (every write transaction starts
  with ``BEGIN IMMEDIATE``, which holds the file's write lock);
  PostgreSQL locks the row (``FOR UPDATE``).
* ``Statements(run_id_order=...)``: how run ids sort by code point, as in
  ``MemoryStore``, whatever the database's collation.
* ``_find_or_create``: how ``claim`` finds a run's row, or creates it,
  atomically.  SQLite reads it under the file's write lock and inserts it if
  missing; PostgreSQL inserts it with ``ON CONFLICT DO NOTHING`` first (a row
  that does not exist cannot be locked), then locks it.
* ``_call``: how to reach the database and run a function in a transaction
  there, in a worker thread, turning the driver's "cannot reach / cannot
  write" errors into ``StoreUnavailableError``.  ``_execute_many`` is the
  driver's bulk insert.
* The schema (column types, ``WITHOUT ROWID``, the collation of the index) and
  how it is made and migrated, ``ping`` and ``aclose`` stay in each dialect's
  module, as each keeps its data on disk.

The semantics mirror ``MemoryStore`` (the reference) rule for rule.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from ..errors import LeaseLostError
from ._store import (
    FINISHED,
    RunRecord,
    Store,
    StoredRun,
    exists_error,
    lease_is_free,
    locked_error,
    unfinished_error,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._store import Owner

__all__ = ["Connection", "SqlStore", "Statements"]

_T = TypeVar("_T")


class Cursor(Protocol):
    """What the stores read from a statement's result (sqlite3 and psycopg alike)."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the shared code asks of a driver's connection (sqlite3 and psycopg alike)."""

    def execute(self, query: str, params: Sequence[Any], /) -> Cursor: ...


ConnT = TypeVar("ConnT", bound=Connection)

_RUN_COLUMNS = "run_id, workflow, status, created_at, updated_at"
_TABLES = ("ticks", "events")


class Statements:
    """Every statement of ``SqlStore``, in one dialect (see the module's docstring).

    :param placeholder: the driver's parameter placeholder.
    :param lock_row: appended to a ``SELECT`` of a run's row that the
        transaction then changes ("" where the transaction holds a lock already).
    :param run_id_order: the ``ORDER BY`` term that sorts run ids by code point.
    """

    def __init__(self, *, placeholder: str, lock_row: str, run_id_order: str) -> None:
        def sql(text: str) -> str:
            return text.format(lock=lock_row, run_id_order=run_id_order).replace("?", placeholder)

        self.placeholder = placeholder
        self.read_run = sql(
            "SELECT workflow, fingerprint, status, created_at, updated_at, owner, "
            "lease_until, state, outcome FROM runs WHERE run_id = ?{lock}"
        )
        """The row ``claim`` reads: unpacked by ``SqlStore.claim``."""
        self.create_run = sql(
            "INSERT INTO runs (run_id, workflow, fingerprint, status, created_at, "
            "updated_at, owner, lease_until) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)"
        )
        """Parameters: run id, workflow, fingerprint, now, now, owner, lease's end."""
        self.lease = sql("UPDATE runs SET owner = ?, lease_until = ? WHERE run_id = ?")
        self.read_ticks = sql("SELECT seq, record FROM ticks WHERE run_id = ? ORDER BY seq")
        self.count_events = sql("SELECT COUNT(*) FROM events WHERE run_id = ?")
        self.read_owner = sql("SELECT owner, status FROM runs WHERE run_id = ?{lock}")
        self.append = sql(
            "UPDATE runs SET state = COALESCE(?, state), updated_at = ?, lease_until = ? "
            "WHERE run_id = ?"
        )
        self.finish = sql(
            "UPDATE runs SET status = ?, outcome = ?, updated_at = ?, owner = NULL, "
            "lease_until = NULL WHERE run_id = ?"
        )
        self.release = sql(
            "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = ? AND owner = ?"
        )
        self.read_events = sql(
            "SELECT seq, record FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
        )
        self.read_events_limit = self.read_events + sql(" LIMIT ?")
        self.get_run = sql(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?")
        self.list_runs = f"SELECT {_RUN_COLUMNS} FROM runs {{where}}" + sql(
            "ORDER BY created_at, {run_id_order}"
        )
        """``{where}``: a ``WHERE`` clause and a space, or nothing."""
        self.read_status = sql("SELECT status FROM runs WHERE run_id = ?{lock}")
        self.delete = {
            table: sql(f"DELETE FROM {table} WHERE run_id = ?") for table in (*_TABLES, "runs")
        }
        """In the order ``delete`` runs them: the records, then the row."""
        self.taken = {
            table: sql(f"SELECT seq FROM {table} WHERE run_id = ? AND seq BETWEEN ? AND ?")
            for table in _TABLES
        }
        self.insert = {
            table: sql(f"INSERT INTO {table} (run_id, seq, record) VALUES (?, ?, ?)")
            for table in _TABLES
        }


class SqlStore(Store, Generic[ConnT]):
    """The store contract over a SQL database; a subclass is a dialect (see
    the module's docstring for what it provides)."""

    _sql: ClassVar[Statements]
    """The dialect's statements."""

    # -- what a dialect provides --------------------------------------------------

    @abstractmethod
    async def _call(self, fn: Callable[[ConnT], _T], *, write: bool) -> _T:
        """Run ``fn`` in one transaction, in a worker thread; ``write`` says
        whether it may write (a dialect may read without a write lock)."""

    @abstractmethod
    def _execute_many(self, conn: ConnT, query: str, rows: Sequence[tuple[str, int, str]]) -> None:
        """Run ``query`` once per row of parameters."""

    @abstractmethod
    def _find_or_create(
        self,
        conn: ConnT,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> tuple[Any, ...] | None:
        """The run's row as ``Statements.read_run`` reads it, kept as read
        until the transaction commits; or None if there was no such run and
        this made it (``Statements.create_run``)."""

    # -- the contract ---------------------------------------------------------------

    async def claim(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> StoredRun:
        def claim(conn: ConnT) -> StoredRun:
            row = self._find_or_create(conn, run_id, workflow, fingerprint, owner, now, lease_until)
            if row is None:
                record = RunRecord.from_row(run_id, workflow, "running", now, now)
                return StoredRun(record, fingerprint, [], None, None, 0, True)
            wf, fp, status, created_at, updated_at, holder, held_until, state, outcome = row
            if status not in FINISHED:
                if not lease_is_free(holder, held_until, owner, now):
                    raise locked_error(run_id, holder, held_until, now)
                conn.execute(self._sql.lease, (str(owner), lease_until, run_id))
            ticks = conn.execute(self._sql.read_ticks, (run_id,)).fetchall()
            (event_count,) = conn.execute(self._sql.count_events, (run_id,)).fetchone()
            record = RunRecord.from_row(run_id, wf, status, created_at, updated_at)
            return StoredRun(record, fp, ticks, state, outcome, event_count, False)

        return await self._call(claim, write=True)

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
        def append(conn: ConnT) -> None:
            self._check_owner(conn, run_id, owner)
            self._insert_new(conn, "ticks", run_id, ticks, "tick")
            self._insert_new(conn, "events", run_id, events, "event")
            conn.execute(self._sql.append, (state, now, lease_until, run_id))

        await self._call(append, write=True)

    async def finish(
        self,
        run_id: str,
        owner: Owner,
        status: str,
        outcome: str,
        events: Sequence[tuple[int, str]],
        now: float,
    ) -> None:
        def finish(conn: ConnT) -> None:
            self._check_owner(conn, run_id, owner)
            self._insert_new(conn, "events", run_id, events, "event")
            conn.execute(self._sql.finish, (status, outcome, now, run_id))

        await self._call(finish, write=True)

    async def create(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        def create(conn: ConnT) -> None:
            row = self._find_or_create(conn, run_id, workflow, fingerprint, owner, now, lease_until)
            if row is not None:
                raise exists_error(run_id)
            self._insert_new(conn, "ticks", run_id, ticks, "tick")
            self._insert_new(conn, "events", run_id, events, "event")
            if state is not None:
                conn.execute(self._sql.append, (state, now, lease_until, run_id))

        await self._call(create, write=True)

    async def append_and_finish(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        status: str,
        outcome: str,
        now: float,
    ) -> None:
        def append_and_finish(conn: ConnT) -> None:
            self._check_owner(conn, run_id, owner)
            self._insert_new(conn, "ticks", run_id, ticks, "tick")
            self._insert_new(conn, "events", run_id, events, "event")
            if state is not None:
                conn.execute(self._sql.append, (state, now, None, run_id))
            conn.execute(self._sql.finish, (status, outcome, now, run_id))

        await self._call(append_and_finish, write=True)

    async def release(self, run_id: str, owner: Owner) -> None:
        def release(conn: ConnT) -> None:
            conn.execute(self._sql.release, (run_id, str(owner)))

        await self._call(release, write=True)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        def read_events(conn: ConnT) -> list[tuple[int, str]]:
            if limit is None:
                rows = conn.execute(self._sql.read_events, (run_id, after)).fetchall()
            else:
                rows = conn.execute(self._sql.read_events_limit, (run_id, after, limit)).fetchall()
            return [(seq, record) for seq, record in rows]

        return await self._call(read_events, write=False)

    async def read_ticks(self, run_id: str) -> list[tuple[int, str]]:
        def read_ticks(conn: ConnT) -> list[tuple[int, str]]:
            rows = conn.execute(self._sql.read_ticks, (run_id,)).fetchall()
            return [(seq, record) for seq, record in rows]

        return await self._call(read_ticks, write=False)

    async def get_run(self, run_id: str) -> RunRecord | None:
        def get_run(conn: ConnT) -> RunRecord | None:
            row = conn.execute(self._sql.get_run, (run_id,)).fetchone()
            return None if row is None else RunRecord.from_row(*row)

        return await self._call(get_run, write=False)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        def list_runs(conn: ConnT) -> list[RunRecord]:
            conditions, params = [], []
            for column, value in (("workflow", workflow), ("status", status)):
                if value is not None:
                    conditions.append(f"{column} = {self._sql.placeholder}")
                    params.append(value)
            where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
            rows = conn.execute(self._sql.list_runs.format(where=where), params).fetchall()
            return [RunRecord.from_row(*row) for row in rows]

        return await self._call(list_runs, write=False)

    async def delete(self, run_id: str) -> bool:
        def delete(conn: ConnT) -> bool:
            # The transaction keeps the run as checked until it commits (the
            # dialect's lock_row): nothing changes the run in between.
            row = conn.execute(self._sql.read_status, (run_id,)).fetchone()
            if row is None:
                return False
            if row[0] not in FINISHED:
                raise unfinished_error(run_id)
            for statement in self._sql.delete.values():
                conn.execute(statement, (run_id,))
            return True

        return await self._call(delete, write=True)

    # -- shared rules ---------------------------------------------------------------

    def _check_owner(self, conn: ConnT, run_id: str, owner: Owner) -> None:
        """Read (and keep, see ``lock_row``) the run's row, or raise
        LeaseLostError if ``owner`` does not hold its lease."""
        row = conn.execute(self._sql.read_owner, (run_id,)).fetchone()
        if row is None or row[0] != str(owner) or row[1] in FINISHED:
            holder = "nobody" if row is None or row[0] is None else row[0]
            raise LeaseLostError(
                f"run {run_id!r} is not leased to {owner} any more (held by {holder}); "
                "this process stops executing it"
            )

    def _insert_new(
        self,
        conn: ConnT,
        table: str,
        run_id: str,
        records: Sequence[tuple[int, str]],
        kind: str,
    ) -> None:
        """Insert ``records`` into ``table`` (``"ticks"`` or ``"events"``), or
        raise LeaseLostError if one of their numbers is taken (the caller's
        transaction then rolls back whatever it wrote).  The caller has checked
        the owner in this transaction, which keeps the run as checked, so
        nobody adds records in between.  A number repeated within the batch
        keeps its last record, as in ``MemoryStore``."""
        if not records:
            return
        batch = dict(records)
        taken = {
            seq
            for (seq,) in conn.execute(
                self._sql.taken[table], (run_id, min(batch), max(batch))
            ).fetchall()
        }
        for seq, _ in records:
            if seq in taken:
                raise LeaseLostError(
                    f"{kind} {seq} of run {run_id!r} is recorded already: another process "
                    "wrote this run; this process stops executing it"
                )
        self._execute_many(
            conn, self._sql.insert[table], [(run_id, seq, text) for seq, text in batch.items()]
        )
