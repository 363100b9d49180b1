"""Handler ids: the ones the server draws, and a start under a taken one (a
409, on asyncio and trio).

The server starts a run as new, and its store refuses to record it under an
id it has a run of (``DurableRuntime.starting_new``); the refusal is the
client's conflict, not the server's failure: nothing is logged, and the run
recorded under that id is left as it was.
"""

from __future__ import annotations

import logging
import string
from typing import TYPE_CHECKING

import httpx
import pytest

from anyflow.durable import MemoryStore, SqliteStore
from anyflow.server import WorkflowServer
from anyflow.server._ids import check_handler_id, new_handler_id

from .flows import Answer, Ask, Greet

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_start_under_a_taken_id_is_a_conflict_and_leaves_that_run_alone(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = WorkflowServer(MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "r.db"))
    server.add_workflow("greet", Greet())
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    async with server.contextmanager():
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            done = await client.post("/workflows/greet/run", json={"handler_id": "done"})
            waiting = await client.post("/workflows/ask/run-nowait", json={"handler_id": "wait"})
            again = {
                (path, handler_id): await client.post(path, json={"handler_id": handler_id})
                for path in ("/workflows/greet/run", "/workflows/greet/run-nowait")
                for handler_id in ("done", "wait")
            }
            after = {h: (await client.get(f"/handlers/{h}")).json() for h in ("done", "wait")}
    assert (done.status_code, waiting.status_code) == (200, 200)
    said = {
        "done": "handler id 'done' already names a completed run",
        "wait": "handler 'wait' is already running",
    }
    for (_, handler_id), response in again.items():
        assert response.status_code == 409
        assert response.json()["detail"].startswith(said[handler_id])
    assert after["done"] == done.json()
    assert (after["wait"]["workflow_name"], after["wait"]["status"]) == ("ask", "running")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_drawn_id_is_ten_characters_each_of_the_62_at_every_position() -> None:
    drawn = [new_handler_id() for _ in range(2000)]
    assert all(check_handler_id(handler_id) == handler_id for handler_id in drawn)
    alphabet = set(string.ascii_letters + string.digits)
    # 2000 draws: a character missing from a position is a chance of about 1e-12.
    assert [{d[i] for d in drawn} for i in range(10)] == [alphabet] * 10
    assert len(set(drawn)) == len(drawn)
