"""``WorkflowServer(runtime=...)``: the runs execute in, and are read back
from, a runtime the caller gives, any ``Runtime`` that is an
``anyflow.durable.RunCatalog`` (``DBOSRuntime`` has its own tests in
tests/dbos; here a ``DurableRuntime``, on both backends)."""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from anyflow.durable import DurableRuntime, LiveRunCatalog, MemoryStore, RunCatalog
from anyflow.runtime import BasicRuntime, RuntimeDecorator
from anyflow.server import WorkflowServer

from .flows import Answer, Ask, Greet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyflow.durable import RunRecord, Store, StoredEvent
    from anyflow.handler import WorkflowHandler
    from anyflow.runtime import Runtime
    from anyflow.workflow import Workflow


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
    assert isinstance(DurableRuntime(MemoryStore()), LiveRunCatalog)
    assert not isinstance(BasicRuntime(), RunCatalog)


class RecordedOnly(RuntimeDecorator):
    """A ``DurableRuntime`` seen only as a ``RunCatalog``: no live feed, so the
    server streams what is recorded (as on ``DBOSRuntime``)."""

    def __init__(self, inner: DurableRuntime) -> None:
        super().__init__(inner)
        self.durable = inner

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self.durable.get_run(run_id)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        return await self.durable.list_runs(workflow=workflow, status=status)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        return await self.durable.read_events(run_id, after, limit)

    def events(self, run_id: str, after: int = -1) -> AsyncIterator[StoredEvent]:
        return self.durable.events(run_id, after)

    async def delete_run(self, run_id: str) -> None:
        await self.durable.delete_run(run_id)

    @property
    def resumes_recorded_runs(self) -> bool:
        return True

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        return self.durable.handler_for(workflow, run_id, runtime or self)

    def add_workflow(self, workflow: Workflow) -> None:
        self.durable.add_workflow(workflow)


async def test_a_catalog_without_a_live_feed_streams_what_is_recorded() -> None:
    runtime = RecordedOnly(DurableRuntime(MemoryStore(), lease=5))
    assert isinstance(runtime, RunCatalog)
    assert not isinstance(runtime, LiveRunCatalog)
    server = WorkflowServer(runtime=runtime)
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    lines: list[str] = []
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(server.serve, port=0, handle_signals=False))
        async with httpx.AsyncClient(base_url=url) as client:
            asked = await client.post("/workflows/ask/run-nowait", json={})
            handler_id = asked.json()["handler_id"]
            # Followed while it waits for its answer, then to its end.
            async with client.stream("GET", f"/events/{handler_id}?after_sequence=-1") as r:
                async for line in r.aiter_lines():
                    if line.startswith(("id: ", "data: ")):
                        lines.append(line)
                    if line.startswith("data: ") and "Question" in line:
                        answer = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
                        sent = await client.post(f"/events/{handler_id}", json={"event": answer})
                        assert sent.json() == {"status": "sent"}
        server.stop()
    ids = [line for line in lines if line.startswith("id: ")]
    data = [line for line in lines if line.startswith("data: ")]
    assert len(ids) == len(data) >= 2
    assert ids == [f"id: {seq}" for seq in range(len(ids))]
    assert "Question" in data[0]
    assert "StopEvent" in data[-1]


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


ANSWER = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}


async def _answer_failing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> tuple[str, httpx.Response]:
    """Start an ``ask`` run and POST it ``ANSWER``, which its runtime takes and
    then, where the send is awaited, fails to deliver with ``error``; the
    run's handler id and the answer to the POST."""
    from anyflow.handler import WorkflowHandler

    asked = await client.post("/workflows/ask/run-nowait", json={})
    handler_id: str = asked.json()["handler_id"]

    async def failing() -> None:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(WorkflowHandler, "send_event", lambda *_, **__: failing())
        return handler_id, await client.post(f"/events/{handler_id}", json={"event": ANSWER})


async def test_an_event_the_runtime_could_not_deliver_is_a_503_to_send_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runtime may take an event and then fail to deliver it (a DBOS
    follower whose message DBOS refused): the sender hears so, with a 503 and
    ``Retry-After``, not a 500 or a "sent", and sending again goes through."""
    from anyflow.errors import DurabilityError

    server = _server(MemoryStore())
    async with _client(server) as client:
        refused = DurabilityError("Reply was not delivered to run 'r': DBOS refused the message")
        handler_id, lost = await _answer_failing(client, monkeypatch, refused)
        assert lost.status_code == 503
        assert lost.headers["Retry-After"] == "1"
        assert lost.json()["detail"].startswith("the event was not delivered, send it again: ")
        assert "DBOS refused the message" in lost.json()["detail"]
        assert (await client.get(f"/handlers/{handler_id}")).json()["status"] == "running"

        sent = await client.post(f"/events/{handler_id}", json={"event": ANSWER})
        assert sent.json() == {"status": "sent"}
        async with client.stream("GET", f"/events/{handler_id}?after_sequence=-1&sse=false") as r:
            lines = [line async for line in r.aiter_lines() if line.strip()]
        assert "StopEvent" in lines[-1]


async def test_an_event_the_run_finished_before_it_was_delivered_is_a_409(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runtime may take an event and then find the run finished before it
    delivered it (a DBOS follower whose run's end was recorded since it last
    looked): the sender hears that the run has finished, as for a send to a
    finished run here, not a 500 or a "sent"."""
    from anyflow.errors import WorkflowRuntimeError

    server = _server(MemoryStore())
    async with _client(server) as client:
        too_late = WorkflowRuntimeError("run 'r' has finished; Answer was not delivered")
        handler_id, late = await _answer_failing(client, monkeypatch, too_late)
        assert late.status_code == 409
        assert late.json()["detail"] == (
            f"Workflow already completed: handler {handler_id!r} has finished"
        )


@pytest.mark.parametrize("runtime", [object(), BasicRuntime()], ids=["object", "BasicRuntime"])
def test_a_runtime_that_cannot_read_its_runs_back_is_refused_at_once(runtime: object) -> None:
    with pytest.raises(
        TypeError,
        match=r"^runtime takes a runtime that records its runs and reads them back \(a Runtime "
        r"that is an anyflow.durable.RunCatalog: DBOSRuntime, DurableRuntime\), not "
        rf"{type(runtime).__qualname__}; to record runs in a store, pass store=$",
    ):
        WorkflowServer(runtime=runtime)  # type: ignore[arg-type]
