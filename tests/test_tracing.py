"""anyflow.tracing: OpenTelemetry spans of runs and step attempts, on both backends."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

pytest.importorskip("opentelemetry.sdk", reason="the tracing tests need opentelemetry-sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    step,
)
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.errors import StepTimeoutError
from anyflow.retry import ConstantDelayRetryPolicy
from anyflow.runtime import BasicRuntime
from anyflow.testing import virtual_time
from anyflow.tracing import TracingRuntime

from .test_examples_docs import load

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Item(Event):
    n: int


class Done(Event):
    n: int


class Approval(HumanResponseEvent):
    pass


class FanOut(Workflow):
    """Three items to a pool of workers (item 1 fails once and is retried),
    collected, then a wait for the caller's approval."""

    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__(timeout=30)
        self.tracer = tracer

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
        for n in range(3):
            ctx.send_event(Item(n=n))
        return None

    @step(num_workers=3, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def work(self, ev: Item, ctx: Context) -> Done:
        if ev.n == 1 and ctx.retry_info().attempt == 1:
            raise Boom("item 1 failed")
        with self.tracer.start_as_current_span(f"inner {ev.n}"):
            await checkpoint()
        return Done(n=ev.n)

    @step
    async def gather(self, ev: Done, ctx: Context) -> StopEvent | None:
        if ctx.collect_events(ev, [Done] * 3) is None:
            return None
        answer = await ctx.wait_for_event(
            Approval, waiter_event=InputRequiredEvent(prefix="approve?")
        )
        return StopEvent(result=answer.response)


class Blocked(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(Approval)
        return StopEvent(result=answer.response)


class Slow(Workflow):
    @step(timeout=10)
    async def slow(self, ev: StartEvent) -> StopEvent:
        await anyio.sleep(3600)
        return StopEvent()


class Fails(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise Boom("no luck")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def answer(handler: Any) -> None:
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            handler.send_event(Approval(response="yes"))


async def test_the_span_tree_of_a_fan_out_with_a_retry_and_a_wait(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        async with TracingRuntime(tracer_provider=provider) as runtime:
            handler = FanOut(tracer).run(runtime=runtime)
            await answer(handler)
            assert await handler == "yes"
    spans = exporter.get_finished_spans()

    [run] = by_name(spans, "anyflow.run FanOut")
    assert parent_id(run) == caller.get_span_context().span_id
    assert run.context is not None
    assert run.context.trace_id == caller.get_span_context().trace_id
    assert run.attributes == {
        "anyflow.run_id": handler.run_id,
        "anyflow.workflow": "FanOut",
        "anyflow.input_event": "StartEvent",
        "anyflow.outcome": "completed",
        "anyflow.output_event": "StopEvent",
    }
    assert run.status.status_code is StatusCode.UNSET
    assert [e.name for e in run.events] == ["input required"]
    assert run.events[0].attributes == {"anyflow.event": "InputRequiredEvent"}

    steps = [s for s in spans if s.name.startswith("anyflow.step ")]
    assert sorted(s.name for s in steps) == sorted(
        ["anyflow.step fan"] + ["anyflow.step work"] * 4 + ["anyflow.step gather"] * 3
    )
    for s in steps:
        assert parent_id(s) == span_id(run), s.name
        assert s.attributes is not None
        assert s.attributes["anyflow.run_id"] == handler.run_id
        assert s.attributes["anyflow.workflow"] == "FanOut"
        assert s.attributes["anyflow.step"] == s.name.split()[-1]
        assert isinstance(s.attributes["anyflow.worker_id"], int)

    [fan] = by_name(spans, "anyflow.step fan")
    assert fan.attributes is not None
    assert fan.attributes["anyflow.input_event"] == "StartEvent"
    assert "anyflow.output_event" not in fan.attributes  # it returned None

    work = by_name(spans, "anyflow.step work")
    failed = [s for s in work if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1
    [failure] = failed
    assert failure.attributes is not None
    assert failure.attributes["anyflow.attempt"] == 1
    assert failure.status.description == "Boom: item 1 failed"
    [exception] = [e for e in failure.events if e.name == "exception"]
    assert exception.attributes is not None
    assert str(exception.attributes["exception.type"]).endswith("Boom")
    assert exception.attributes["exception.message"] == "item 1 failed"
    assert "anyflow.output_event" not in failure.attributes

    retried = [s for s in work if s.attributes and s.attributes["anyflow.attempt"] == 2]
    assert len(retried) == 1
    assert retried[0].status.status_code is StatusCode.UNSET
    assert retried[0].start_time is not None
    assert failure.end_time is not None
    assert retried[0].start_time >= failure.end_time  # a separate, later attempt
    for s in work:
        assert s.attributes is not None
        assert s.attributes["anyflow.input_event"] == "Item"
        if s is not failure:
            assert s.attributes["anyflow.output_event"] == "Done"

    # Spans a step opens are children of that attempt's span.
    inner = [s for s in spans if s.name.startswith("inner ")]
    assert sorted(s.name for s in inner) == ["inner 0", "inner 1", "inner 2"]
    succeeded = {span_id(s) for s in work if s is not failure}
    assert {parent_id(s) for s in inner} == succeeded

    gather = by_name(spans, "anyflow.step gather")
    assert all(s.status.status_code is StatusCode.UNSET for s in gather)  # the wait is no error
    outputs = sorted(str((s.attributes or {}).get("anyflow.output_event")) for s in gather)
    assert outputs == ["None", "None", "StopEvent"]
    for s in spans:
        if s is not failure:
            assert s.status.status_code is not StatusCode.ERROR, s.name


async def test_a_cancelled_run_is_not_an_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with TracingRuntime(tracer_provider=provider) as runtime:
        handler = Blocked().run(runtime=runtime)
        await anyio.wait_all_tasks_blocked()
        await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler
    spans = exporter.get_finished_spans()
    [run] = by_name(spans, "anyflow.run Blocked")
    [ask] = by_name(spans, "anyflow.step ask")
    assert run.attributes is not None
    assert run.attributes["anyflow.outcome"] == "cancelled"
    assert parent_id(run) is None  # no span was current where the run was started
    assert parent_id(ask) == span_id(run)
    assert run.status.status_code is StatusCode.UNSET
    assert ask.status.status_code is StatusCode.UNSET
    assert [e.name for e in ask.events] == ["cancelled"]


async def test_a_failed_run_records_its_exception(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with TracingRuntime(tracer_provider=provider) as runtime:
        with pytest.raises(Boom):
            await Fails().run(runtime=runtime)
    [run] = by_name(exporter.get_finished_spans(), "anyflow.run Fails")
    [go] = by_name(exporter.get_finished_spans(), "anyflow.step go")
    assert run.attributes is not None
    assert run.attributes["anyflow.outcome"] == "failed"
    assert run.attributes["anyflow.step"] == "go"
    assert run.status.status_code is StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]
    assert go.status.status_code is StatusCode.ERROR


async def test_a_step_timeout_is_the_attempts_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with virtual_time() as clock:
        async with TracingRuntime(tracer_provider=provider) as runtime:
            with pytest.raises(StepTimeoutError):
                await Slow().run(runtime=runtime)
        assert clock.now() == 10
    [slow] = by_name(exporter.get_finished_spans(), "anyflow.step slow")
    assert slow.status.status_code is StatusCode.ERROR
    assert slow.status.description is not None
    assert slow.status.description.startswith("StepTimeoutError: step 'slow' took longer")


async def test_the_run_span_is_a_child_of_the_span_where_run_was_called(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Also with ``async with wf.run()``-style use of a runtime whose task group
    was entered outside the caller's span, and around a durable runtime."""
    tracer = provider.get_tracer("test")
    async with TracingRuntime(DurableRuntime(MemoryStore()), tracer_provider=provider) as runtime:
        with tracer.start_as_current_span("request") as request:
            handler = Blocked().run(runtime=runtime)
        await anyio.wait_all_tasks_blocked()
        handler.send_event(Approval(response="ok"))
        assert await handler == "ok"
    spans = exporter.get_finished_spans()
    [run] = by_name(spans, "anyflow.run Blocked")
    [ask] = by_name(spans, "anyflow.step ask")
    assert parent_id(run) == request.get_span_context().span_id
    assert parent_id(ask) == span_id(run)
    assert ask.attributes is not None
    assert ask.attributes["anyflow.output_event"] == "StopEvent"


async def test_untraced_runtimes_do_not_wrap_steps() -> None:
    """The step hook costs nothing unless an adapter overrides it."""
    internal, _ = BasicRuntime().open_run("r")
    assert not internal.wraps_steps
    traced, _ = TracingRuntime().open_run("r")
    assert traced.wraps_steps


async def test_logs_carry_the_run_id_and_say_nothing_per_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="anyflow"):
        async with BasicRuntime() as runtime:
            handler = FanOut(trace.get_tracer("test")).run(runtime=runtime)
            await answer(handler)
            await handler
        records = [r for r in caplog.records if r.name == "anyflow"]
        # Only the retried attempt is worth a line at INFO.
        assert [r.levelno for r in records] == [logging.INFO]
        assert (
            records[0]
            .getMessage()
            .startswith(
                f"run {handler.run_id}: step 'work' failed (attempt 1) with Boom('item 1 failed')"
            )
        )
        assert records[0].anyflow_run_id == handler.run_id  # type: ignore[attr-defined]

        caplog.clear()
        handler = Fails().run()
        with pytest.raises(Boom):
            await handler
        # The caller receives the failure: one line at INFO, no traceback.
        [record] = [r for r in caplog.records if r.name == "anyflow"]
        assert record.levelno == logging.INFO
        assert record.getMessage().startswith(f"run {handler.run_id} of Fails failed: step 'go'")
        assert record.exc_info is None

    with caplog.at_level(logging.DEBUG, logger="anyflow"):
        caplog.clear()
        handler = Blocked().run()
        async with handler:
            handler.send_event(Approval(response="x"))
        messages = [r.getMessage() for r in caplog.records if r.name == "anyflow"]
        assert messages == [
            f"run {handler.run_id} of Blocked started",
            f"run {handler.run_id} of Blocked completed",
        ]


async def test_the_example_prints_the_span_tree(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await load("tracing").main()
    assert capsys.readouterr().out.splitlines() == [
        "result: 3 pages, approved",
        "handle request",
        "  anyflow.run Research  [input_event=StartEvent, output_event=StopEvent, "
        "event: input required]",
        "    anyflow.step search  [attempt=1, input_event=StartEvent, "
        "ERROR ConnectionError: search service unreachable]",
        "    anyflow.step search  [attempt=2, input_event=StartEvent, output_event=Found]",
        "      fetch pages",
        "    anyflow.step approve  [attempt=1, input_event=Found, output_event=StopEvent]",
    ]
