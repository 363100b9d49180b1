"""The server embedded in ``httpx.ASGITransport`` without a lifespan.

The incumbent's own tests put ``server.app`` in an ``ASGITransport`` and never
start it.  anyflow serves such requests by themselves: the runs live in the
requests, a run started without waiting is recorded and runs only while a
request about it is served, and nothing is left running between requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import anyio
import httpx
import pytest

from anyflow import StartEvent, StopEvent, Workflow, step
from anyflow.context.serializers import JsonSerializer
from anyflow.server import WorkflowServer

from .flows import Answer, Ask, Greet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Tally(Workflow):
    """Counts the times its step's code ran."""

    runs: ClassVar[list[str]] = []

    @step
    async def tally(self, ev: StartEvent) -> StopEvent:
        Tally.runs.append("ran")
        return StopEvent(result=len(Tally.runs))


@pytest.fixture
def server() -> WorkflowServer:
    server = WorkflowServer()
    server.add_workflow("greet", Greet())
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    server.add_workflow("tally", Tally())
    return server


@pytest.fixture
async def client(server: WorkflowServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _idle(server: WorkflowServer) -> bool:
    """Nothing of the server is open between requests."""
    return (server._on_demand, server._runs) == (None, None)


async def test_requests_are_served_and_leave_nothing_open(
    server: WorkflowServer, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/health")).json() == {"status": "healthy"}
    response = await client.post("/workflows/greet/run", json={"kwargs": {"name": "Ada"}})
    assert response.status_code == 200
    assert response.json()["result"]["value"]["result"] == "hello Ada"
    assert _idle(server)


async def test_run_nowait_records_the_run_and_runs_nothing_until_asked(
    server: WorkflowServer, client: httpx.AsyncClient
) -> None:
    Tally.runs.clear()
    started = await client.post("/workflows/tally/run-nowait", json={})
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    handler_id = started.json()["handler_id"]
    assert Tally.runs == []
    listed = (await client.get("/handlers")).json()["handlers"]
    assert [(h["handler_id"], h["status"]) for h in listed] == [(handler_id, "running")]
    # A request about the run runs it: its status is answered once it is quiet.
    done = await client.get(f"/handlers/{handler_id}")
    assert done.status_code == 200
    assert done.json()["result"]["value"]["result"] == 1
    assert Tally.runs == ["ran"]
    assert _idle(server)


async def test_a_waiting_run_stays_recorded_and_goes_on_when_answered(
    server: WorkflowServer, client: httpx.AsyncClient
) -> None:
    handler_id = (await client.post("/workflows/ask/run-nowait", json={})).json()["handler_id"]
    waiting = await client.get(f"/handlers/{handler_id}")
    assert waiting.status_code == 202  # it asked, and waits for the answer
    assert _idle(server)
    sent = await client.post(
        f"/events/{handler_id}",
        json={"event": JsonSerializer().serialize_value(Answer(key="name", response="Ada"))},
    )
    assert sent.json() == {"status": "sent"}
    events = await client.get(f"/events/{handler_id}", params={"after_sequence": -1, "sse": False})
    kinds = [line.split('"type":"')[1].split('"')[0] for line in events.text.splitlines()]
    assert kinds == ["Question", "StopEvent"]
    result = await client.get(f"/handlers/{handler_id}")
    assert result.json()["result"]["value"]["result"] == "nice to meet you, Ada"
    assert _idle(server)


async def test_cancel_a_run_started_without_waiting(client: httpx.AsyncClient) -> None:
    handler_id = (await client.post("/workflows/ask/run-nowait", json={})).json()["handler_id"]
    cancelled = await client.post(f"/handlers/{handler_id}/cancel")
    assert cancelled.json() == {"status": "cancelled"}
    assert (await client.get(f"/handlers/{handler_id}")).json()["status"] == "cancelled"


async def test_requests_at_once_share_the_runs(
    server: WorkflowServer, client: httpx.AsyncClient
) -> None:
    """A stream that follows a waiting run, and the answer sent meanwhile by
    another request: one runtime for both, closed once both have left."""
    handler_id = (await client.post("/workflows/ask/run-nowait", json={})).json()["handler_id"]
    lines: list[str] = []

    async def follow() -> None:
        url = f"/events/{handler_id}?after_sequence=-1&sse=false"
        lines.extend((await client.get(url)).text.splitlines())

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        await anyio.wait_all_tasks_blocked()  # the stream waits for the answer
        assert server._on_demand is not None
        assert server._on_demand.users == 1
        answer = {"type": "Answer", "value": {"key": "name", "response": "Bo"}}
        sent = await client.post(f"/events/{handler_id}", json={"event": answer})
        assert sent.json() == {"status": "sent"}
    assert '"type":"Question"' in lines[0]
    assert "nice to meet you, Bo" in lines[-1]
    assert _idle(server)


async def test_the_incumbents_start_and_stop_may_be_awaited(
    server: WorkflowServer, client: httpx.AsyncClient
) -> None:
    assert await server.start() is server
    assert await server.stop() is None
    # Without a lifespan, stop() ends nothing for good: the next request is served.
    assert (await client.get("/health")).status_code == 200


async def test_server_made_handler_ids_are_ten_letters_or_digits_and_never_reused(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = (await client.post("/workflows/greet/run", json={})).json()["handler_id"]
    assert len(first) == 10
    assert first.isalnum()
    assert first.isascii()
    drawn = iter([first, first, "fresh"])
    monkeypatch.setattr("anyflow.server._routes.new_handler_id", lambda: next(drawn))
    again = await client.post("/workflows/greet/run", json={})
    assert again.status_code == 200
    assert again.json()["handler_id"] == "fresh"


async def test_contextmanager_gives_the_server(server: WorkflowServer) -> None:
    async with server.contextmanager() as entered:
        assert entered is server
        assert server.is_running


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_contextmanager_may_be_left_from_another_task(server: WorkflowServer) -> None:
    """pytest-asyncio sets a fixture up in one task and tears it down in
    another: the server's block must allow it, and close all the same."""
    import asyncio

    block = server.contextmanager()
    await asyncio.get_running_loop().create_task(block.__aenter__())
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = await client.post("/workflows/ask/run-nowait", json={})
        assert started.json()["status"] == "running"
    await asyncio.get_running_loop().create_task(block.__aexit__(None, None, None))
    assert not server.is_running
    assert server._runs is None
