"""A follower's send is never lost (issue #17): sent before the run's DBOS
workflow exists, it waits for it; sent to a run that does not exist, or that
has finished, awaiting it raises instead of returning as if the event had
arrived."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from dbos import DBOS

from anyflow.dbos import DBOSRuntime, _bridge
from anyflow.dbos._catalog import RecordReader
from anyflow.errors import DurabilityError, WorkflowRuntimeError
from tests.durable.test_unrecordable import Reply, Wait

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def runtime(database_url: str, attach_timeout: float = 5.0) -> DBOSRuntime:
    return DBOSRuntime(
        name="anyflow-tests",
        database_url=database_url,
        poll_interval=0.02,
        attach_timeout=attach_timeout,
        dbos_config={"log_level": "WARNING"},
    )


class _StartGate:
    """Holds back the start of run ``run_id``'s DBOS workflow until the
    follower has looked for it and found nothing, and no message to the run is
    in flight: a send that does not wait for the workflow has been tried (and
    refused) by then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, run_id: str) -> None:
        self.run_id = run_id
        self.missing = 0  # lookups of the run that found no workflow
        self.sending = 0
        self.sends = 0
        self.opened = anyio.Event()
        status = DBOS.get_workflow_status_async
        send = _bridge.send_unless_ended
        start = DBOS.start_workflow_async

        async def get_status(workflow_id: str) -> Any:
            found = await status(workflow_id)
            if workflow_id == run_id and found is None:
                self.missing += 1
                self._check()
            return found

        async def send_unless_ended(run_id: str, message: str) -> str | None:
            self.sending += 1
            self.sends += 1
            try:
                return await send(run_id, message)
            finally:
                self.sending -= 1
                self._check()

        async def start_workflow(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if args and args[0] == run_id:
                await self.opened.wait()
            return await start(func, *args, **kwargs)

        monkeypatch.setattr(DBOS, "get_workflow_status_async", get_status)
        monkeypatch.setattr(_bridge, "send_unless_ended", send_unless_ended)
        monkeypatch.setattr(DBOS, "start_workflow_async", start_workflow)

    def _check(self) -> None:
        # Two lookups found nothing: the executing handler's before it starts
        # the workflow, and the follower's.
        if self.missing >= 2 and self.sending == 0:
            self.opened.set()


async def test_a_follower_send_before_the_run_exists_waits_for_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _StartGate(monkeypatch, "early")
    async with runtime(database_url) as rt:
        handler = Wait().run(run_id="early", runtime=rt)
        follower = rt.attach(Wait(), "early")
        with anyio.fail_after(60):  # a failure detector: the lost event hangs the run
            await follower.send_event(Reply(response="first", n=1))
            assert gate.opened.is_set()
            assert await handler == ["first", 1]
            assert await follower == ["first", 1]
    assert gate.sends == 1


async def test_a_follower_send_to_a_run_that_does_not_exist_raises(database_url: str) -> None:
    async with runtime(database_url, attach_timeout=0.1) as rt:
        follower = rt.attach(Wait(), "nobody")
        with pytest.raises(
            DurabilityError,
            match=r"Reply was not delivered to run 'nobody': no run 'nobody' is recorded",
        ):
            await follower.send_event(Reply(response="lost"))
        with pytest.raises(DurabilityError, match=r"no run 'nobody' is recorded"):
            await follower
        assert await rt.get_run("nobody") is None


async def test_a_follower_send_to_a_run_that_finished_since_it_looked_raises(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The follower reads the run's record once, then no more until released:
    # it has not seen the end when it sends, as a follower in another process
    # between two reads.
    looked = anyio.Event()
    release = anyio.Event()
    wait = RecordReader.wait

    async def held(reader: RecordReader) -> None:
        if reader.run_id == "done" and not release.is_set():
            looked.set()
            await release.wait()
        await wait(reader)

    monkeypatch.setattr(RecordReader, "wait", held)
    async with runtime(database_url) as rt:
        handler = Wait().run(run_id="done", runtime=rt)
        follower = rt.attach(Wait(), "done")
        with anyio.fail_after(60):
            await looked.wait()
            await handler.send_event(Reply(response="owner", n=1))
            assert await handler == ["owner", 1]
            with pytest.raises(
                WorkflowRuntimeError, match=r"^run 'done' has finished; Reply was not delivered$"
            ):
                await follower.send_event(Reply(response="late", n=2))
            release.set()
            assert await follower == ["owner", 1]


async def test_a_send_that_finds_the_database_locked_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As DBOS.send does: a failure DBOS retries (SQLite's "database is
    # locked", a lost PostgreSQL connection) is waited out, and the whole
    # transaction tried again.
    import sqlite3

    from dbos._dbos import _get_dbos_instance

    async with runtime(f"sqlite:///{tmp_path / 'dbos.db'}") as rt:
        handler = Wait().run(run_id="locked", runtime=rt)
        await handler.wait_recorded()
        sys_db = _get_dbos_instance()._sys_db
        write = sys_db.send_bulk_with_connection
        failures = [sqlite3.OperationalError("database is locked")]

        def locked_once(*args: Any, **kwargs: Any) -> None:
            if failures:
                raise failures.pop()
            write(*args, **kwargs)

        monkeypatch.setattr(sys_db, "send_bulk_with_connection", locked_once)
        follower = rt.attach(Wait(), "locked")
        with anyio.fail_after(60):
            await follower.send_event(Reply(response="again", n=3))
            assert failures == []
            assert await handler == ["again", 3]


async def test_a_send_waits_for_the_end_being_recorded_and_is_refused(database_url: str) -> None:
    # The race of a send with the run's end: another transaction records the
    # end (as DBOS's does, an UPDATE of the workflow's status row) and has not
    # committed when the follower's message is sent.  Read before that commit,
    # the status would still be PENDING and the message written for a run
    # that has ended; the send waits for that transaction instead, and sees
    # the end.
    async with runtime(database_url) as rt:
        handler = Wait().run(run_id="turns", runtime=rt)
        await handler.wait_recorded()
        ending = _Ending.of(database_url)
        try:
            sent: list[str | None] = []

            async def send() -> None:
                sent.append(await _bridge.send_unless_ended("turns", '"late"'))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send)
                    while not ending.send_is_in_place():  # noqa: ASYNC110 - a wait in the database
                        await anyio.sleep(0.01)
                    ending.commit()
            assert sent == ["SUCCESS"]
            assert ending.messages() == 0
        finally:
            ending.close()


class _Ending:
    """Another connection's transaction recording the end of run ``turns``,
    open until ``commit``."""

    @staticmethod
    def of(url: str) -> _Ending:
        return _PostgresEnding(url) if url.startswith("postgresql") else _SQLiteEnding(url)

    def send_is_in_place(self) -> bool:
        """Whether the send has reached the point where it reads the status."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def messages(self) -> int:
        """How many messages were written for the run."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _PostgresEnding(_Ending):
    def __init__(self, url: str) -> None:
        import psycopg

        self._ending = psycopg.connect(url)
        self._look = psycopg.connect(url, autocommit=True)
        self._ending.execute(
            "UPDATE dbos.workflow_status SET status = 'SUCCESS' WHERE workflow_uuid = 'turns'"
        )

    def send_is_in_place(self) -> bool:
        # It waits for the row lock (the runtime's own sessions may wait for
        # that row too, but not with this query).
        row = self._look.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%workflow_status%FOR SHARE%'"
        ).fetchone()
        return bool(row and row[0])

    def commit(self) -> None:
        self._ending.commit()

    def messages(self) -> int:
        row = self._look.execute(
            "SELECT count(*) FROM dbos.notifications WHERE destination_uuid = 'turns'"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self._ending.close()
        self._look.close()


class _SQLiteEnding(_Ending):
    def __init__(self, url: str) -> None:
        import sqlite3

        import sqlalchemy as sa
        from dbos._dbos import _get_dbos_instance

        self._ending = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        self._ending.execute("BEGIN IMMEDIATE")
        self._ending.execute(
            "UPDATE workflow_status SET status = 'SUCCESS' WHERE workflow_uuid = 'turns'"
        )
        # SQLite shows no lock waits: the send's own statements say where it
        # is, the write lock asked for (it waits there), or the status read.
        self._in_place = False
        self._engine = _get_dbos_instance()._sys_db.engine
        self._listen = functools.partial(sa.event.listen, self._engine)
        self._listen("before_cursor_execute", self._before)
        self._listen("after_cursor_execute", self._after)

    def _before(self, _c: Any, _k: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            self._in_place = True

    def _after(self, _c: Any, _k: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT workflow_status.status"):
            self._in_place = True

    def send_is_in_place(self) -> bool:
        return self._in_place

    def commit(self) -> None:
        self._ending.execute("COMMIT")

    def messages(self) -> int:
        (count,) = self._ending.execute(
            "SELECT count(*) FROM notifications WHERE destination_uuid = 'turns'"
        ).fetchone()
        return int(count)

    def close(self) -> None:
        import sqlalchemy as sa

        sa.event.remove(self._engine, "before_cursor_execute", self._before)
        sa.event.remove(self._engine, "after_cursor_execute", self._after)
        self._ending.close()
