"""The incumbent's own HTTP client (llama-agents-client, from PyPI) against anyflow's server.

The client is asyncio-only, so these tests run it on asyncio; the server runs
on asyncio and on trio in its own thread.  A user of the incumbent's client
writes pydantic events of the incumbent's library; the server only sees their
JSON, which must mean the same thing to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from llama_agents.client import WorkflowClient
from workflows.events import HumanResponseEvent, StartEvent

from .conftest import demo_server, serving

if TYPE_CHECKING:
    from collections.abc import Iterator


class Answer(HumanResponseEvent):
    """The user's own copy of the server's answer event (same name and fields)."""

    key: str


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["asyncio", "trio"], ids=["server-asyncio", "server-trio"])
def client(request: pytest.FixtureRequest) -> Iterator[WorkflowClient]:
    with serving(demo_server(), request.param) as url:
        yield WorkflowClient(base_url=url)


async def test_discovery(client: WorkflowClient) -> None:
    assert (await client.is_healthy()).status == "healthy"
    assert sorted((await client.list_workflows()).workflows) == ["ask", "count", "fail", "greet"]
    schema = await client.get_workflow_schema("count")
    assert schema.start["properties"]["count"]["type"] == "integer"
    assert schema.stop["title"] == "Counted"
    events = await client.get_workflow_events_schema("ask")
    assert "Answer" in {e["title"] for e in events.events}
    graph = (await client.get_workflow_graph("ask")).graph
    assert "ask" in {node.id for node in graph.nodes}


async def test_blocking_run_with_the_incumbents_start_event(client: WorkflowClient) -> None:
    handler = await client.run_workflow("greet", start_event=StartEvent(name="Ada"))
    assert handler.status == "completed"
    assert handler.result is not None
    assert handler.result.type == "StopEvent"
    assert handler.result.value == {"result": "hello Ada"}
    assert handler.completed_at is not None


async def test_nowait_stream_and_reconnect_without_gap_or_duplicate(
    client: WorkflowClient,
) -> None:
    started = await client.run_workflow_nowait("count", start_event={"count": 5})
    stream = client.get_workflow_events(started.handler_id, after_sequence=-1)
    first = []
    async for event in stream:
        first.append((stream.last_sequence, event.type, event.value))
        if len(first) == 2:
            break
    resumed = client.get_workflow_events(started.handler_id, after_sequence=stream.last_sequence)
    rest = [(resumed.last_sequence, e.type, e.value) async for e in resumed]
    rest = [(seq, kind, value) for (seq, kind, value) in rest]
    seen = first + rest
    assert [kind for _, kind, _ in seen] == ["Progress"] * 5 + ["Counted"]
    assert [value["n"] for _, kind, value in seen if kind == "Progress"] == [0, 1, 2, 3, 4]
    assert seen[-1][2] == {"result": None, "total": 5}
    # The stream has ended: a reader past the end gets nothing (a 204).
    after_end = client.get_workflow_events(started.handler_id, after_sequence=5)
    assert [e async for e in after_end] == []
    done = await client.get_handler(started.handler_id)
    assert done.status == "completed"
    assert done.result is not None
    assert done.result.types == ["StopEvent"]


async def test_human_in_the_loop(client: WorkflowClient) -> None:
    started = await client.run_workflow_nowait("ask")
    stream = client.get_workflow_events(started.handler_id, after_sequence=-1)
    async for event in stream:
        if "InputRequiredEvent" in (event.types or []):
            assert event.type == "Question"
            assert event.value["prefix"] == "Who are you?"
            sent = await client.send_event(started.handler_id, Answer(key="name", response="Ada"))
            assert sent.status == "sent"
        if "StopEvent" in [event.type, *(event.types or [])]:
            assert event.value == {"result": "nice to meet you, Ada"}
    done = await client.wait_for_handler(started.handler_id, timeout=30, poll_interval=0.05)
    assert done.status == "completed"
    with pytest.raises(httpx.HTTPStatusError, match="409"):
        await client.send_event(started.handler_id, Answer(key="name", response="again"))


async def test_cancel_then_purge(client: WorkflowClient) -> None:
    started = await client.run_workflow_nowait("ask")
    assert (await client.cancel_handler(started.handler_id)).status == "cancelled"
    cancelled = await client.get_handlers(status=["cancelled"])
    assert [h.handler_id for h in cancelled.handlers] == [started.handler_id]
    events = [e async for e in client.get_workflow_events(started.handler_id, after_sequence=-1)]
    assert events[-1].type == "WorkflowCancelledEvent"
    assert events[-1].types == ["StopEvent"]
    assert (await client.cancel_handler(started.handler_id, purge=True)).status == "deleted"
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        await client.get_handler(started.handler_id)


async def test_failing_step(client: WorkflowClient) -> None:
    with pytest.raises(httpx.HTTPStatusError, match="500") as caught:
        await client.run_workflow("fail")
    body = caught.value.response.json()
    assert body["status"] == "failed"
    assert "Boom: the fuse was short" in body["error"]
    failed = await client.get_handlers(status=["failed"], workflow_name=["fail"])
    assert len(failed.handlers) == 1
    events = [e async for e in client.get_workflow_events(body["handler_id"], after_sequence=-1)]
    assert events[-1].type == "WorkflowFailedEvent"
    assert events[-1].value["exception_message"] == "the fuse was short"


async def test_bad_inputs_leave_the_run_unaffected(client: WorkflowClient) -> None:
    started = await client.run_workflow_nowait("ask", handler_id="mine")
    with pytest.raises(httpx.HTTPStatusError, match="409"):
        await client.run_workflow_nowait("greet", handler_id="mine")
    with pytest.raises(httpx.HTTPStatusError, match=r"400.*unknown event type 'Nope'"):
        await client.send_event("mine", {"type": "Nope", "value": {}})
    with pytest.raises(httpx.HTTPStatusError, match=r"400.*Answer"):
        await client.send_event("mine", {"type": "Answer", "value": {"response": "no key"}})
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        await client.send_event("nobody", Answer(key="name", response="Ada"))
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        await client.run_workflow_nowait("nope")
    await client.send_event(started.handler_id, Answer(key="name", response="Ada"))
    done = await client.wait_for_handler("mine", timeout=30, poll_interval=0.05)
    assert done.result is not None
    assert done.result.value == {"result": "nice to meet you, Ada"}


async def test_embedded_in_asgi_transport_without_a_lifespan() -> None:
    """As the incumbent's own tests use it: ``server.app`` in an
    ``httpx.ASGITransport``, never started.  Each request is served by itself;
    a run started without waiting runs while a request about it is served."""
    server = demo_server()
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = WorkflowClient(httpx_client=http)
        assert (await client.is_healthy()).status == "healthy"
        started = await client.run_workflow_nowait("count", start_event={"count": 3})
        assert started.status == "running"
        events = [e async for e in client.get_workflow_events(started.handler_id)]
        assert [e.type for e in events] == ["Progress"] * 3 + ["Counted"]
        assert (await client.get_result(started.handler_id)).status == "completed"
        waiting = await client.run_workflow_nowait("ask")
        sent = await client.send_event(waiting.handler_id, Answer(key="name", response="Ada"))
        assert sent.status == "sent"
        done = await client.get_handler(waiting.handler_id)
        assert done.result is not None
        assert done.result.value == {"result": "nice to meet you, Ada"}
        other = await client.run_workflow_nowait("ask")
        assert (await client.cancel_handler(other.handler_id)).status == "cancelled"
    assert server._on_demand is None
    assert server._runs is None
