"""The incumbent's server API spellings, and the in-process test host.

A program written for llama-agents-server builds its server with
``WorkflowServer(workflow_store=MemoryWorkflowStore())``, enters it with
``async with server.contextmanager()``, embeds ``server.app`` in
``httpx.ASGITransport`` with ``base_url="http://test"``, may add a workflow
while it runs, posts events as ``JsonSerializer().serialize(event)`` writes
them, and matches on the first words of the server's error messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from anyflow.context.serializers import JsonSerializer
from anyflow.durable import MemoryStore
from anyflow.server import WorkflowServer
from anyflow.server import server as server_module
from anyflow.server.abstract_workflow_store import (
    AbstractWorkflowStore,
    HandlerQuery,
    PersistentHandler,
)
from anyflow.server.memory_workflow_store import MemoryWorkflowStore

from .flows import Answer, Ask, Count, Greet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _server() -> WorkflowServer:
    server = WorkflowServer(workflow_store=MemoryWorkflowStore())
    server.add_workflow("greet", Greet())
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    return server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    server = _server()
    async with server.contextmanager():
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def test_incumbent_module_paths_and_names() -> None:
    assert server_module.WorkflowServer is WorkflowServer
    assert issubclass(MemoryWorkflowStore, MemoryStore)
    server = WorkflowServer(workflow_store=MemoryWorkflowStore())
    assert isinstance(server.store, MemoryWorkflowStore)


def test_workflow_store_is_checked_at_once() -> None:
    with pytest.raises(ValueError, match="not both"):
        WorkflowServer(MemoryStore(), workflow_store=MemoryStore())
    with pytest.raises(TypeError, match="workflow_store takes an anyflow store"):
        WorkflowServer(workflow_store=object())  # type: ignore[arg-type]


async def test_the_incumbents_handler_rows_are_refused_with_what_to_use() -> None:
    with pytest.raises(NotImplementedError, match=r"PersistentHandler\(\) .* no counterpart"):
        PersistentHandler(handler_id="h1", workflow_name="w", status="running")
    with pytest.raises(NotImplementedError, match=r"HandlerQuery\(\) .* GET /handlers"):
        HandlerQuery(handler_id_in=["h1"])
    with pytest.raises(NotImplementedError, match=r"update\(\)"):
        await MemoryWorkflowStore().update()
    with pytest.raises(TypeError, match=r"MyStore: .* anyflow\.durable\.Store"):

        class MyStore(AbstractWorkflowStore):
            pass


async def test_contextmanager_runs_the_lifespan(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "healthy"}
    response = await client.post("/workflows/greet/run", json={"kwargs": {"name": "Ada"}})
    assert response.status_code == 200
    assert response.json()["result"]["value"]["result"] == "hello Ada"


async def test_without_a_lifespan_requests_are_served() -> None:
    """(More in test_without_lifespan.py.)"""
    server = _server()
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/workflows/greet/run", json={})
    assert response.status_code == 200
    assert response.json()["result"]["value"]["result"] == "hello world"


async def test_add_workflow_after_start() -> None:
    server = _server()
    async with server.contextmanager():
        server.add_workflow("count", Count())
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/workflows/count/run", json={"kwargs": {"count": 2}})
            assert response.status_code == 200
            assert response.json()["result"]["value"]["total"] == 2
            assert set((await client.get("/workflows")).json()["workflows"]) == {
                "greet",
                "ask",
                "count",
            }
        with pytest.raises(ValueError, match="served as 'count' already"):
            server.add_workflow("count", Count())


async def test_an_event_as_the_serializer_writes_it_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    started = await client.post("/workflows/ask/run-nowait", json={})
    handler_id = started.json()["handler_id"]
    event = JsonSerializer().serialize(Answer(key="name", response="Ada"))
    sent = await client.post(f"/events/{handler_id}", json={"event": event})
    assert sent.json() == {"status": "sent"}
    # The stream ends when the run does.
    async with client.stream("GET", f"/events/{handler_id}?after_sequence=-1&sse=false") as r:
        lines = [line async for line in r.aiter_lines() if line.strip()]
    assert "StopEvent" in lines[-1]
    result = await client.get(f"/handlers/{handler_id}")
    assert result.json()["result"]["value"]["result"] == "nice to meet you, Ada"


async def test_error_messages_start_with_the_incumbents_words(
    client: httpx.AsyncClient,
) -> None:
    bad_start = await client.post("/workflows/greet/run", json={"start_event": "not json"})
    assert bad_start.status_code == 400
    assert bad_start.json()["detail"].startswith("Validation error for 'start_event': ")
    wrong_type = await client.post(
        "/workflows/greet/run",
        json={"start_event": {"qualified_name": "workflows.events.StopEvent", "value": {}}},
    )
    assert wrong_type.status_code == 400
    assert "Start event must be an instance of StartEvent" in wrong_type.json()["detail"]

    unknown = await client.post("/events/nobody", json={"event": "{}"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("Handler not found: no handler 'nobody'")

    finished = (await client.post("/workflows/greet/run", json={})).json()["handler_id"]
    late = await client.post(f"/events/{finished}", json={"event": "{}"})
    assert late.status_code == 409
    assert late.json()["detail"].startswith("Workflow already completed: ")

    started = (await client.post("/workflows/ask/run-nowait", json={})).json()["handler_id"]
    missing = await client.post(f"/events/{started}", json={})
    assert missing.status_code == 400
    assert missing.json()["detail"].startswith("Event data is required: ")
    garbled = await client.post(f"/events/{started}", json={"event": "not json"})
    assert garbled.status_code == 400
    assert garbled.json()["detail"].startswith("Failed to deserialize event: ")
    not_json = await client.post(
        f"/events/{started}", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["detail"].startswith(
        "Error processing request: the body is not valid JSON: "
    )
    with_context = await client.post("/workflows/greet/run", json={"context": {"state": {}}})
    assert with_context.status_code == 400
    assert with_context.json()["detail"].startswith("Context API is disabled: ")
    await client.post(f"/handlers/{started}/cancel")


def test_accept_context_api_is_taken_only_as_false() -> None:
    WorkflowServer(accept_context_api=False)
    with pytest.raises(ValueError, match=r"accept_context_api=True: .* posted context"):
        WorkflowServer(accept_context_api=True)


async def test_types_is_null_for_an_event_deriving_only_from_event() -> None:
    """As the incumbent writes an envelope: ``types`` lists the event classes
    between the class and ``Event``, and is null when there are none."""
    server = WorkflowServer(workflow_store=MemoryWorkflowStore())
    server.add_workflow("greet", Greet())
    server.add_workflow("count", Count())
    async with server.contextmanager():
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await _check_types(client)


async def _check_types(client: httpx.AsyncClient) -> None:
    plain = (await client.post("/workflows/greet/run", json={})).json()
    assert plain["result"]["type"] == "StopEvent"
    assert plain["result"]["types"] is None
    custom = (await client.post("/workflows/count/run", json={"kwargs": {"count": 1}})).json()
    assert custom["result"]["types"] == ["StopEvent"]
    listed = (await client.get("/handlers")).json()["handlers"]
    assert {h["handler_id"]: h["result"]["types"] for h in listed} == {
        plain["handler_id"]: None,
        custom["handler_id"]: ["StopEvent"],
    }
    async with client.stream(
        "GET", f"/events/{plain['handler_id']}?after_sequence=-1&sse=false"
    ) as stream:
        lines = [line async for line in stream.aiter_lines() if line.strip()]
    assert '"types":null' in lines[-1]


@pytest.mark.parametrize("name", ["test", "testserver"])
async def test_the_in_process_test_host_is_served(name: str) -> None:
    server = _server()
    async with server.contextmanager():
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            assert (await client.get("/health")).status_code == 200
            # A port does not change it; the server's name in the scope does.
            assert (await client.get(f"http://{name}:8000/health")).status_code == 200


async def test_a_test_host_name_from_a_socket_is_still_refused() -> None:
    """``Host: test`` through a network server: the scope's server is the
    socket's address, so the rebinding guard refuses it."""
    server = _server()
    seen: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            seen.append(int(message["status"]))  # type: ignore[call-overload]

    for server_field in [("127.0.0.1", 8080), None, ("other", 80)]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/health",
            "raw_path": b"/health",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 5000),
            "server": server_field,
        }
        await server.app(scope, receive, send)
    assert seen == [400, 400, 400]
