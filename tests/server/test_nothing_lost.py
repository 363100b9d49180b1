"""What the server accepts, it records; what it cannot record, it refuses.

* A value the run's journal could not write or read back (``1e400`` reads as
  an infinite float, which JSON has no text for) is a 400 before the request
  is answered, and the run goes on as if it never came.
* A PostgreSQL store whose database stops taking connections: requests it
  cannot record are 503 with ``Retry-After`` within the store's timeout,
  ``/health`` says why, and the server goes on by itself once the database
  is back.
* ``GET /handlers`` lists a run whose records cannot be read back with the
  reason, instead of failing the whole list, and pages.

A server in its own thread per test, on asyncio and on trio, as in conftest.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from anyflow.durable import DurableRuntime, PostgresStore, SqliteStore
from anyflow.server import WorkflowServer

from .conftest import demo_server, serving
from .flows import Answer, Ask, Greet
from .polling import events_until, until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

JSON = {"content-type": "application/json"}
ANSWER = {"event": {"type": "Answer", "value": {"key": "name", "response": "Ada"}}}

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])


# Values the journal cannot record.


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_start_event_that_cannot_be_recorded_is_400_and_starts_nothing(
    backend: str, number: str
) -> None:
    with serving(demo_server(), backend) as url, httpx.Client(base_url=url, headers=JSON) as http:
        body = f'{{"handler_id": "big", "start_event": {{"name": {number}}}}}'
        for route in ("run", "run-nowait"):
            refused = http.post(f"/workflows/greet/{route}", content=body.encode())
            assert refused.status_code == 400, refused.text
            assert "inf at $.fields._extra.name is not a finite number" in refused.json()["detail"]
        assert http.get("/handlers/big").status_code == 404
        assert http.get("/handlers").json()["handlers"] == []
        done = http.post("/workflows/greet/run", json={"handler_id": "big"})
        assert done.json()["result"]["value"] == {"result": "hello world"}


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_sent_event_that_cannot_be_recorded_is_400_and_the_run_goes_on(
    backend: str, number: str
) -> None:
    with serving(demo_server(), backend) as url, httpx.Client(base_url=url, headers=JSON) as http:
        assert http.post("/workflows/ask/run-nowait", json={"handler_id": "q"}).status_code == 200
        assert events_until(http, "q", "Question") == ["Question"]
        body = f'{{"event": {{"type": "Answer", "value": {{"key": "k", "response": {number}}}}}}}'
        refused = http.post("/events/q", content=body.encode())
        assert refused.status_code == 400, refused.text
        assert "cannot record Answer" in refused.json()["detail"]
        assert "nothing was sent" in refused.json()["detail"]
        # The run did not freeze, and never saw the refused answer.
        assert http.post("/events/q", json=ANSWER).status_code == 200
        assert events_until(http, "q", "StopEvent") == ["Question", "StopEvent"]
        assert http.get("/handlers/q").json()["result"]["value"] == {
            "result": "nice to meet you, Ada"
        }


# A PostgreSQL outage.


@contextlib.contextmanager
def _database(postgres_url: str) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A database of its own (URL) and a switch that takes it down (False)
    or brings it back (True): down, it takes no connections and those it had
    are cut, as when the server restarts or the network fails."""
    import psycopg
    from psycopg import sql

    name = f"anyflow_outage_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(postgres_url, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def switch(up: bool) -> None:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if up else "false")
            )
        )
        if not up:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )

    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}", switch
    finally:
        switch(False)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


def test_a_postgres_outage_is_503_and_the_server_goes_on_when_it_is_back(
    backend: str, postgres_url: str
) -> None:
    with _database(postgres_url) as (url, switch), contextlib.ExitStack() as stack:
        store = PostgresStore(url, timeout=2)
        # The server does not own a store it was given: close it, before its
        # database is dropped.
        stack.callback(lambda: anyio.run(store.aclose, backend=backend))
        server = WorkflowServer(store, store_retry=0.2)
        server.add_workflow("ask", Ask(), additional_events=[Answer])
        base = stack.enter_context(serving(server, backend))
        with httpx.Client(base_url=base, headers=JSON, timeout=30) as http:
            assert http.post("/workflows/ask/run-nowait", json={"handler_id": "p"}).is_success
            assert events_until(http, "p", "Question") == ["Question"]

            switch(False)
            health = http.get("/health")
            assert health.status_code == 503
            assert "the PostgreSQL store cannot be reached" in health.json()["reason"]
            for path, body in (("/workflows/ask/run-nowait", {}), ("/events/p", ANSWER)):
                refused = http.post(path, json=body)
                assert refused.status_code == 503, refused.text
                assert refused.headers["retry-after"] == "1"

            switch(True)
            until(lambda: http.get("/health").status_code == 200, "the database to be back")

            # A store call that began during the outage may still fail after
            # /health says 200, and stall the run again for a moment: a client
            # that honours 503 + Retry-After gets its answer in, once.
            def answer() -> bool:
                answered = http.post("/events/p", json=ANSWER)
                assert answered.status_code in (200, 503), answered.text
                return answered.status_code == 200

            until(answer, "the answer to be taken")
            assert events_until(http, "p", "StopEvent") == ["Question", "StopEvent"]
            assert http.get("/handlers/p").json()["status"] == "completed"


# Listing handlers.


def _record_runs(db: Path, backend: str, run_ids: list[str]) -> None:
    """Finished runs of Greet in ``db``, recorded as a server would record them."""

    async def record() -> None:
        async with DurableRuntime(SqliteStore(db, durability="off")) as runtime:
            for run_id in run_ids:
                await Greet().run(run_id=run_id, runtime=runtime, name=run_id)

    anyio.run(record, backend=backend)


def _greet_server(db: Path) -> WorkflowServer:
    server = WorkflowServer(SqliteStore(db, durability="off"))
    server.add_workflow("greet", Greet())
    return server


def test_a_run_that_cannot_be_read_back_does_not_break_the_list(
    tmp_path: Path, backend: str
) -> None:
    db = tmp_path / "runs.db"
    _record_runs(db, backend, ["good", "damaged"])
    with sqlite3.connect(db) as conn:  # a damaged last event: its checksum no longer fits
        conn.execute(
            "UPDATE events SET record = 'deadbeef:{}' WHERE run_id = 'damaged' AND seq = "
            "(SELECT MAX(seq) FROM events WHERE run_id = 'damaged')"
        )
    with serving(_greet_server(db), backend) as url, httpx.Client(base_url=url) as http:
        listed = http.get("/handlers")
        assert listed.status_code == 200, listed.text
        by_id = {h["handler_id"]: h for h in listed.json()["handlers"]}
        assert by_id["good"]["result"]["value"] == {"result": "hello good"}
        assert by_id["good"]["result_unreadable"] is False
        damaged = by_id["damaged"]
        assert (damaged["status"], damaged["result"], damaged["result_unreadable"]) == (
            "completed",
            None,
            True,
        )
        assert "the run's records cannot be read" in damaged["error"]
        assert "damaged" in damaged["error"]
        alone = http.get("/handlers/damaged")
        assert alone.json()["result_unreadable"] is True


def test_handlers_come_in_pages(tmp_path: Path, backend: str) -> None:
    db = tmp_path / "runs.db"
    run_ids = [f"run-{n}" for n in range(7)]
    _record_runs(db, backend, run_ids)
    with serving(_greet_server(db), backend) as url, httpx.Client(base_url=url) as http:
        everything = http.get("/handlers").json()
        assert [h["handler_id"] for h in everything["handlers"]] == run_ids
        assert everything["next_cursor"] is None

        seen, cursor, pages = [], None, 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            page = http.get("/handlers", params=params).json()
            seen += [h["handler_id"] for h in page["handlers"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (run_ids, 3)

        filtered = http.get("/handlers", params={"limit": 1, "status": "completed"}).json()
        assert [h["handler_id"] for h in filtered["handlers"]] == ["run-0"]
        for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"cursor": "nonsense"}):
            refused = http.get("/handlers", params=bad)
            assert refused.status_code == 400, (bad, refused.text)
