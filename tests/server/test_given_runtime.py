"""``WorkflowServer(runtime=...)``: the runs execute in, and are read back
from, a runtime the caller gives, any ``Runtime`` that is an
``anyflow.durable.RunCatalog`` (``DBOSRuntime`` has its own tests in
tests/dbos; here a ``DurableRuntime``, on both backends)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import httpx
import pytest

from anyflow.durable import DurableRuntime, MemoryStore, RunCatalog
from anyflow.runtime import BasicRuntime
from anyflow.server import WorkflowServer

from .flows import Answer, Ask, Greet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyflow.durable import Store


def _server(store: Store) -> WorkflowServer:
    server = WorkflowServer(runtime=DurableRuntime(store, lease=5))
    server.add_workflow("greet", Greet())
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    return server


@contextlib.asynccontextmanager
async def _client(server: WorkflowServer) -> AsyncIterator[httpx.AsyncClient]:
    async with server.contextmanager():
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def test_the_durable_runtime_is_a_run_catalog() -> None:
    assert isinstance(DurableRuntime(MemoryStore()), RunCatalog)
    assert not isinstance(BasicRuntime(), RunCatalog)


async def test_a_server_on_a_durable_runtime_runs_and_resumes_from_its_store() -> None:
    store = MemoryStore()
    first = _server(store)
    async with _client(first) as client:
        greeted = await client.post("/workflows/greet/run", json={"kwargs": {"name": "Ada"}})
        assert greeted.json()["result"]["value"]["result"] == "hello Ada"
        asked = await client.post("/workflows/ask/run-nowait", json={})
        handler_id = asked.json()["handler_id"]
    # A second server on the same store: the run it finds unfinished resumes
    # there, and takes its answer.
    second = _server(store)
    async with _client(second) as client:
        handler = await client.get(f"/handlers/{handler_id}")
        assert handler.json()["status"] == "running"
        answer = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
        sent = await client.post(f"/events/{handler_id}", json={"event": answer})
        assert sent.json() == {"status": "sent"}
        async with client.stream("GET", f"/events/{handler_id}?after_sequence=-1&sse=false") as r:
            lines = [line async for line in r.aiter_lines() if line.strip()]
        assert "StopEvent" in lines[-1]
        result = await client.get(f"/handlers/{handler_id}")
        assert result.json()["result"]["value"]["result"] == "nice to meet you, Ada"
        listed = await client.get("/handlers")
        assert {h["workflow_name"] for h in listed.json()["handlers"]} == {"greet", "ask"}


@pytest.mark.parametrize("runtime", [object(), BasicRuntime()], ids=["object", "BasicRuntime"])
def test_a_runtime_that_cannot_read_its_runs_back_is_refused_at_once(runtime: object) -> None:
    with pytest.raises(
        TypeError,
        match=r"^runtime takes a runtime that records its runs and reads them back \(a Runtime "
        r"that is an anyflow.durable.RunCatalog: DBOSRuntime, DurableRuntime\), not "
        rf"{type(runtime).__qualname__}; to record runs in a store, pass store=$",
    ):
        WorkflowServer(runtime=runtime)  # type: ignore[arg-type]
