"""``TracingRuntime``: a runtime decorator whose adapters open OpenTelemetry spans.

A run's span starts when its driver starts (in ``recover``, the first thing a
driver asks its adapter, where the workflow is known) and ends in ``finish``;
its parent is the span that was current where the run's adapters were made,
that is where ``wf.run()`` was called (``open_run`` runs there).  Each step
attempt's span is opened in ``step_call``, around the attempt, in the step's
own task, with the run's span as its explicit parent (a worker task may have
been started from inside another step, so the task's inherited context is not
trusted), and is made current while the step's code runs.

Nothing here is touched by a run that is not traced: the driver calls
``step_call`` only when an adapter overrides it (``wraps_steps``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "anyflow.tracing needs OpenTelemetry's API: pip install 'anyflow[otel]'"
    ) from exc

from ..events import InputRequiredEvent
from ..runtime import BasicRuntime, InternalRunAdapterDecorator, RuntimeDecorator
from ..runtime.vocabulary import Broken, Cancelled, Completed, Failed, TimedOut

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from opentelemetry.context import Context as OtelContext
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ..context import StateStore
    from ..events import Event
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Recovery, Runtime
    from ..runtime.vocabulary import Outcome
    from ..workflow import Workflow

__all__ = ["ATTRIBUTES", "TracingRuntime"]

RUN_ID = "anyflow.run_id"
WORKFLOW = "anyflow.workflow"
STEP = "anyflow.step"
ATTEMPT = "anyflow.attempt"
WORKER_ID = "anyflow.worker_id"
INPUT_EVENT = "anyflow.input_event"
OUTPUT_EVENT = "anyflow.output_event"
OUTCOME = "anyflow.outcome"
RESUMED = "anyflow.resumed"

ATTRIBUTES = {
    RUN_ID: "the run's id (run and step spans)",
    WORKFLOW: "the workflow's class name (run and step spans)",
    STEP: "the step's name (step spans)",
    ATTEMPT: "the attempt's number, 1 for the first (step spans)",
    WORKER_ID: "the attempt's worker id within the run (step spans)",
    INPUT_EVENT: "the class name of the start event (run) or of the step's input event",
    OUTPUT_EVENT: "the class name of the step's output event, when it returned one, or "
    "of the run's stop event",
    OUTCOME: "how the run ended: completed, failed, timed_out, cancelled or broken (run spans)",
    RESUMED: "True on a run span whose run was resumed from its record (durable runs)",
}
"""The span attributes anyflow sets, and what each means."""

_TRACER_NAME = "anyflow"


class TracingRuntime(RuntimeDecorator):
    """Traces every run of ``inner`` (a new ``BasicRuntime`` by default) with
    OpenTelemetry: a span ``anyflow.run <Workflow>`` per run, child of the span
    current where ``wf.run()`` was called, and a span ``anyflow.step <name>``
    per step attempt, child of the run's span and current while the step's code
    runs (so spans the step opens are its children).

    A failed attempt's span records the exception and has status ERROR; an
    attempt cancelled (the run ended or was cancelled, also while the step
    waited for input) is no error, and gets a ``cancelled`` event.  The run's
    span is ERROR when the run failed, timed out or broke, and not when it was
    cancelled.  Put it outside other runtime decorators, as in
    ``TracingRuntime(DurableRuntime(store))``: a ``DurableRuntime`` recovers
    runs without asking the runtime it wraps, so inside one there is no run span.

    :param tracer_provider: where spans go; OpenTelemetry's global provider by
        default.
    """

    def __init__(
        self, inner: Runtime | None = None, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        super().__init__(inner if inner is not None else BasicRuntime())
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        # open_run is called where wf.run() was: its current span is the run's parent.
        return _TracingAdapter(internal, self._tracer, otel_context.get_current()), external


class _TracingAdapter(InternalRunAdapterDecorator):
    __slots__ = ("_parent", "_run_context", "_span", "_tracer", "_workflow")

    def __init__(self, inner: InternalRunAdapter, tracer: Tracer, parent: OtelContext) -> None:
        super().__init__(inner)
        self._tracer = tracer
        self._parent = parent
        self._span: Span | None = None
        self._run_context: OtelContext = parent
        self._workflow = ""

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        self._workflow = name = type(workflow).__name__
        attributes: dict[str, Any] = {RUN_ID: self.run_id, WORKFLOW: name}
        if start_event is not None:
            attributes[INPUT_EVENT] = type(start_event).__name__
        span = self._tracer.start_span(
            f"anyflow.run {name}", context=self._parent, attributes=attributes
        )
        self._span = span
        self._run_context = trace.set_span_in_context(span, self._parent)
        token = otel_context.attach(self._run_context)  # the record's reads are the run's
        try:
            recovery = await self.inner.recover(workflow, start_event, store)
        finally:
            otel_context.detach(token)
        if recovery is not None:
            if recovery.state is not None or recovery.outcome is not None:
                span.set_attribute(RESUMED, True)
            elif recovery.start_event is not None and start_event is None:
                span.set_attribute(INPUT_EVENT, type(recovery.start_event).__name__)
        return recovery

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        parent = self._run_context
        span = self._tracer.start_span(
            f"anyflow.step {step}",
            context=parent,
            attributes={
                RUN_ID: self.run_id,
                WORKFLOW: self._workflow,
                STEP: step,
                ATTEMPT: attempt,
                WORKER_ID: worker_id,
                INPUT_EVENT: type(event).__name__,
            },
        )
        # Explicitly on top of the run's context, not of this task's: a worker
        # task started from inside another step inherited that step's span.
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            output = await self.inner.step_call(step, worker_id, attempt, event, call)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                span.add_event("cancelled")
            raise
        else:
            if output is not None:
                span.set_attribute(OUTPUT_EVENT, type(output).__name__)
            return output
        finally:
            otel_context.detach(token)
            span.end()

    def publish(self, event: Any) -> None:
        if isinstance(event, InputRequiredEvent) and self._span is not None:
            self._span.add_event("input required", {"anyflow.event": type(event).__name__})
        self.inner.publish(event)

    def finish(self, outcome: Outcome) -> None:
        span, self._span = self._span, None
        if span is not None:
            _end_run_span(span, outcome)
        self.inner.finish(outcome)


def _end_run_span(span: Span, outcome: Outcome) -> None:
    match outcome:
        case Completed(stop_event=stop_event):
            span.set_attribute(OUTCOME, "completed")
            span.set_attribute(OUTPUT_EVENT, type(stop_event).__name__)
        case Cancelled():
            span.set_attribute(OUTCOME, "cancelled")
        case Failed(step=step, error=error, attempts=attempts):
            span.set_attribute(OUTCOME, "failed")
            span.set_attribute(STEP, step)
            if isinstance(error, BaseException):
                span.record_exception(error)
            message = f"step {step!r} failed (attempt {attempts}): {error!r}"
            span.set_status(Status(StatusCode.ERROR, message))
        case TimedOut(timeout=timeout):
            span.set_attribute(OUTCOME, "timed_out")
            span.set_status(Status(StatusCode.ERROR, f"timed out after {timeout:g}s"))
        case Broken(error=error, message=message):
            span.set_attribute(OUTCOME, "broken")
            if isinstance(error, BaseException):
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, message))
    span.end()
