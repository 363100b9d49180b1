"""Tracing: OpenTelemetry spans for a run and each of its step attempts.

A research run searches (the search service fails once, and the step is
retried), opens a span of its own around the fetch, and then waits for the
caller to approve.  ``TracingRuntime`` makes a span per run, a child of the
caller's span, and one per step attempt, a child of the run's; the spans are
kept in memory here and printed as a tree.  In an application, set up a
tracer provider with an exporter (OTLP, console, ...) instead and leave out
``tracer_provider=``: anyflow then uses OpenTelemetry's global one.

Needs ``pip install 'anyflow[otel]' opentelemetry-sdk``.  Run it with
``python examples/tracing.py`` (add ``--backend trio`` for trio).
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import TYPE_CHECKING

import anyio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.retry import ConstantDelayRetryPolicy
from anyflow.tracing import TracingRuntime

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan


class Found(Event):
    pages: int


class Approval(HumanResponseEvent):
    pass


class Research(Workflow):
    def __init__(self, provider: TracerProvider) -> None:
        super().__init__(timeout=60)
        self.tracer = provider.get_tracer("research")  # trace.get_tracer(...) in an app
        self.calls = 0

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.01, maximum_attempts=3))
    async def search(self, ev: StartEvent) -> Found:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("search service unreachable")
        with self.tracer.start_as_current_span("fetch pages"):  # a child of this attempt
            await anyio.sleep(0.001)
        return Found(pages=3)

    @step
    async def approve(self, ev: Found, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            Approval, waiter_event=InputRequiredEvent(prefix=f"publish {ev.pages} pages?")
        )
        return StopEvent(result=f"{ev.pages} pages, {answer.response}")


def print_tree(spans: Sequence[ReadableSpan]) -> None:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        details = [
            f"{key.removeprefix('anyflow.')}={attributes[key]}"
            for key in ("anyflow.attempt", "anyflow.input_event", "anyflow.output_event")
            if key in attributes
        ]
        if span.status.status_code.name == "ERROR":
            details.append(f"ERROR {span.status.description}")
        details += [f"event: {e.name}" for e in span.events if e.name != "exception"]
        print("  " * depth + span.name + (f"  [{', '.join(details)}]" if details else ""))
        assert span.context is not None
        for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time):
            show(child, depth + 1)

    for root in children[None]:
        show(root, 0)


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")

    with tracer.start_as_current_span("handle request"):  # the caller's span
        async with TracingRuntime(tracer_provider=provider) as runtime:
            handler = Research(provider).run(topic="owls", runtime=runtime)
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    handler.send_event(Approval(response="approved"))
            print(f"result: {await handler}")
    print_tree(exporter.get_finished_spans())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
