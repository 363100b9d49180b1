"""A served run is traced: ``WorkflowServer(decorate_runtime=...)`` puts the
server's runtime in a ``TracingRuntime``, on asyncio and trio."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tracing tests need opentelemetry-sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from anyflow.durable import MemoryStore
from anyflow.runtime import BasicRuntime
from anyflow.server import WorkflowServer
from anyflow.tracing import TracingRuntime

from .flows import Greet

if TYPE_CHECKING:
    from anyflow.runtime import Runtime


async def test_a_run_started_over_http_has_a_run_span_and_step_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = WorkflowServer(
        MemoryStore(),
        decorate_runtime=lambda runtime: TracingRuntime(runtime, tracer_provider=provider),
    )
    server.add_workflow("greet", Greet())
    transport = httpx.ASGITransport(app=server.app)
    async with (
        server.app.router.lifespan_context(server.app),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as http,
    ):
        response = await http.post("/workflows/greet/run", json={"start_event": {"name": "ada"}})
        assert response.status_code == 200
        handler_id = response.json()["handler_id"]
    spans = exporter.get_finished_spans()
    [run] = [s for s in spans if s.name == "anyflow.run Greet"]
    [hello] = [s for s in spans if s.name == "anyflow.step hello"]
    assert run.attributes is not None
    assert run.attributes["anyflow.run_id"] == handler_id
    assert run.attributes["anyflow.outcome"] == "completed"
    assert hello.parent is not None
    assert hello.parent.span_id == run.context.span_id


async def test_a_decorator_that_does_not_wrap_the_runtime_is_refused() -> None:
    def elsewhere(runtime: Runtime) -> Runtime:
        return TracingRuntime(BasicRuntime())  # runs would not be recorded

    server = WorkflowServer(decorate_runtime=elsewhere)
    with pytest.raises(TypeError, match="around the runtime it is given"):
        async with server.app.router.lifespan_context(server.app):
            pass


def test_decorate_runtime_takes_a_function() -> None:
    with pytest.raises(TypeError, match="decorate_runtime takes a function"):
        WorkflowServer(decorate_runtime=TracingRuntime())  # type: ignore[arg-type]
