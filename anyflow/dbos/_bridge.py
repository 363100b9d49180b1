"""What anyflow registers with DBOS, and how a run's DBOS workflow reaches the
runtime that executes it.

A run is one DBOS workflow, ``anyflow.run(run_id, workflow, start)``, whose id
is the run id.  Its body does not execute the workflow: it hands its DBOS
context to the process's ``DBOSRuntime`` and waits for the outcome.  The
runtime's driver then records, through that context, one ``anyflow.record``
step per batch of ticks.  The hand-over lets every execution (a new start, a
taken-over run, a run DBOS recovered on its own background event loop) happen
in the runtime's task group, under its cancel scopes, on the application's
event loop.

This is the one module that knows DBOS internals: the context variable that
holds a workflow's context, the ``notifications`` system table, read to learn
that a run has a message waiting without spending a recorded operation on it,
and the transaction in which a follower's message is written only to a run
whose end is not recorded (``send_unless_ended``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import anyio
import sqlalchemy as sa
from dbos import DBOS, SendMessage, WorkflowSerializationFormat
from dbos._context import _dbos_context_var
from dbos._dbos import _get_dbos_instance
from dbos._sys_db import db_retry

__all__ = [
    "FINISHED",
    "RECORD",
    "RUN",
    "TOPIC",
    "Host",
    "current_context",
    "host",
    "pending_messages",
    "record",
    "run",
    "send_unless_ended",
    "set_host",
    "use_context",
]

RUN = "anyflow.run"
"""The DBOS workflow name of every anyflow run."""
RECORD = "anyflow.record"
"""The DBOS step name of a recorded batch of ticks."""
TOPIC = "anyflow.tick"
"""The DBOS message topic of ticks sent to a run from outside."""


class Host(Protocol):
    """The ``DBOSRuntime`` of this process, seen from a run's DBOS workflow."""

    loop: asyncio.AbstractEventLoop

    async def execute(self, run_id: str, workflow: str, start: str, context: Any) -> str: ...


_host: Host | None = None


def host() -> Host | None:
    return _host


def set_host(runtime: Host | None) -> None:
    global _host
    _host = runtime


@DBOS.step(name=RECORD)
async def record(executed: list[bool], payload: str | None) -> str | None:
    """Record ``payload``; when the step was recorded before (a replay), DBOS
    returns that record without calling this, so ``executed`` stays empty:
    that is how a replay knows it has reached the live end of the record."""
    executed.append(True)
    return payload


@DBOS.workflow(name=RUN)
async def run(run_id: str, workflow: str, start: str) -> str:
    context = _dbos_context_var.get()
    host = _host
    while host is None:
        # DBOS recovered this run at launch, before the application entered
        # its DBOSRuntime: wait for it, the run stays pending meanwhile.
        await asyncio.sleep(0.05)
        host = _host
    if asyncio.get_running_loop() is host.loop:
        return await host.execute(run_id, workflow, start, context)
    # On DBOS's background event loop (a recovered or taken-over run): the
    # run executes on the runtime's loop, this task only waits for it.
    future = asyncio.run_coroutine_threadsafe(
        host.execute(run_id, workflow, start, context), host.loop
    )
    return await asyncio.wrap_future(future)


def current_context() -> Any:
    return _dbos_context_var.get()


def use_context(context: Any) -> None:
    """Make ``context`` (a run's DBOS workflow context) the current task's, so
    the driver's ``record`` and ``recv`` calls belong to that workflow."""
    _dbos_context_var.set(context)


def pending_messages() -> set[str]:
    """The runs of the application that have a message not yet received.

    A hint, read in a worker thread: the message itself is then taken with
    ``DBOS.recv``, which records it.  One query for every run, the same each
    time (SQLAlchemy compiles it once), instead of a list of this process's.
    """
    sys_db = _get_dbos_instance()._sys_db
    with sys_db.engine.connect() as connection:
        return {row[0] for row in connection.execute(_pending_query(sys_db.tables.notifications))}


FINISHED = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
"""DBOS's statuses of a workflow that has ended."""


async def send_unless_ended(run_id: str, message: str) -> str | None:
    """Send ``message`` to the run on ``TOPIC`` unless the run's DBOS workflow
    has ended; the status it ended with when nothing was sent, else None.

    ``DBOS.send`` takes a message to an ended workflow, which never receives
    it.  Here the status is read and the message written in one transaction
    that holds the status row against a concurrent end (PostgreSQL: ``FOR
    SHARE``, which the ``UPDATE`` recording the end waits for; SQLite: the
    transaction takes the write lock before it reads, so writers take turns):
    the end is recorded either before it, and nothing is written, or after
    the message is.

    :raises dbos.error.DBOSNonExistentWorkflowError: if there is no such workflow.
    """
    sys_db = _get_dbos_instance()._sys_db
    return await anyio.to_thread.run_sync(_send_unless_ended, sys_db, run_id, message)


@db_retry()  # as DBOS.send: a lost connection is waited out, the whole transaction again
def _send_unless_ended(sys_db: Any, run_id: str, message: str) -> str | None:
    from dbos._error import DBOSNonExistentWorkflowError

    table = sys_db.tables.workflow_status
    query = sa.select(table.c.status).where(table.c.workflow_uuid == run_id)
    with sys_db.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 begins DBOS's IMMEDIATE transactions only at
            # the first write: the read would come before the lock.
            connection.execute(sa.text("BEGIN IMMEDIATE"))
        status = connection.execute(query.with_for_update(read=True)).scalar()
        if status is None:
            raise DBOSNonExistentWorkflowError("`send` destination", run_id)
        if status in FINISHED:
            return str(status)
        sys_db.send_bulk_with_connection(
            [SendMessage(run_id, message, TOPIC)],
            connection,
            serialization_type=WorkflowSerializationFormat.DEFAULT,
            function_name="DBOS.send",
            send_to_forks=False,
        )
    return None


_cached: tuple[Any, Any] = (None, None)
"""The notifications table of the current DBOS instance, and the query on it."""


def _pending_query(table: Any) -> Any:
    global _cached
    if _cached[0] is not table:
        query = (
            sa.select(table.c.destination_uuid)
            .where(table.c.topic == TOPIC, table.c.consumed == sa.false())
            .distinct()
        )
        _cached = (table, query)
    return _cached[1]
