"""The incumbent's client (llama-agents-client) with anyflow's own event classes.

A program that serves anyflow workflows and talks to them with the incumbent's
client uses one set of event classes on both sides: the client serialises the
events it sends with ``model_dump(mode="json")`` and decodes the ones it reads
with ``model_validate``, which anyflow events offer.  The client is asyncio-only;
the server runs on asyncio and on trio in its own thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from llama_agents.client import WorkflowClient
from workflows import events as incumbent

from anyflow.events import StopEvent, WorkflowFailedEvent
from anyflow.server import WorkflowServer

from .conftest import demo_server, serving
from .flows import Answer, Count, Counted, CountStart, Progress, Question

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["asyncio", "trio"], ids=["server-asyncio", "server-trio"])
def client(request: pytest.FixtureRequest) -> Iterator[WorkflowClient]:
    with serving(demo_server(), request.param) as url:
        yield WorkflowClient(base_url=url)


async def test_typed_start_event_and_decoded_stream(client: WorkflowClient) -> None:
    started = await client.run_workflow_nowait("count", start_event=CountStart(count=2))
    stream = client.get_workflow_events(started.handler_id, after_sequence=-1)
    decoded = [e.load_event(registry=[Progress, Counted]) async for e in stream]
    assert decoded == [Progress(step="count", n=0), Progress(step="count", n=1), Counted(total=2)]
    done = await client.get_handler(started.handler_id)
    assert done.result is not None
    assert Counted.model_validate(done.result.value) == Counted(total=2)


async def test_typed_answer_sent_into_a_waiting_run(client: WorkflowClient) -> None:
    started = await client.run_workflow_nowait("ask")
    stream = client.get_workflow_events(started.handler_id, after_sequence=-1)
    async for envelope in stream:
        event = envelope.load_event(registry=[Question, StopEvent])
        if isinstance(event, Question):
            assert event.prefix == "Who are you?"
            sent = await client.send_event(started.handler_id, Answer(key="name", response="Ada"))
            assert sent.status == "sent"
        else:
            assert event == StopEvent(result="nice to meet you, Ada")
    done = await client.wait_for_handler(started.handler_id, timeout=30, poll_interval=0.05)
    assert done.status == "completed"


async def test_failure_events_decode_with_and_without_a_registry(client: WorkflowClient) -> None:
    with pytest.raises(httpx.HTTPStatusError, match="500") as caught:
        await client.run_workflow("fail")
    handler_id = caught.value.response.json()["handler_id"]
    stream = client.get_workflow_events(handler_id, after_sequence=-1)
    last = [e async for e in stream][-1]
    # Named as the incumbent names its built-in: its client resolves that name.
    assert last.qualified_name == "workflows.events.WorkflowFailedEvent"
    ours = last.load_event(registry=[WorkflowFailedEvent])
    assert isinstance(ours, WorkflowFailedEvent)
    assert (ours.step_name, ours.exception_type, ours.exception_message) == (
        "explode",
        "Boom",
        "the fuse was short",
    )
    theirs = last.load_event()
    assert isinstance(theirs, incumbent.WorkflowFailedEvent)
    assert theirs.step_name == "explode"
    assert str(theirs.exception) == "the fuse was short"


async def test_built_in_stop_event_decodes_without_a_registry(client: WorkflowClient) -> None:
    handler = await client.run_workflow("greet", start_event={"name": "Ada"})
    assert handler.result is not None
    assert handler.result.qualified_name == "workflows.events.StopEvent"
    assert handler.result.load_event().result == "hello Ada"
    assert handler.result.load_event(registry=[StopEvent]) == StopEvent(result="hello Ada")


async def test_unknown_workflow_answers_with_the_incumbents_words_first(
    client: WorkflowClient,
) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await client.run_workflow("nonexistent", start_event=CountStart(count=1))
    detail = caught.value.response.json()["detail"]
    assert caught.value.response.status_code == 404
    assert detail.startswith("Workflow not found: no workflow 'nonexistent' is served here")


def _embedded(server: WorkflowServer) -> WorkflowClient:
    transport = httpx.ASGITransport(server.app)
    return WorkflowClient(
        httpx_client=httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
    )


async def test_embedded_without_a_lifespan_runs() -> None:
    server = WorkflowServer()
    server.add_workflow("count", Count())
    handler = await _embedded(server).run_workflow("count", start_event=CountStart(count=1))
    assert handler.result is not None
    assert handler.result.load_event(registry=[Counted]) == Counted(total=1)


async def test_embedded_inside_its_lifespan_runs() -> None:
    server = WorkflowServer()
    server.add_workflow("count", Count())
    async with server.app.router.lifespan_context(server.app):
        handler = await _embedded(server).run_workflow("count", start_event=CountStart(count=1))
    assert handler.result is not None
    assert handler.result.load_event(registry=[Counted]) == Counted(total=1)
