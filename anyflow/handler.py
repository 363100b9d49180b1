"""``WorkflowHandler``: the caller's grip on one run.

A handler is returned by ``wf.run()`` and is used in one of three ways:

* ``await wf.run(...)``: run to the end inside the awaiting task; the result.
* ``async with wf.run(...) as handler:``: the run lives inside the block.
  Leaving the block normally waits for the run; leaving it with an exception
  cancels the run.  Either way nothing of the run is left running afterwards.
  A run that failed while nobody looked (no ``await handler``, ``result()`` or
  ``exception()``) raises its exception when the block ends, so no failure
  passes silently.
* ``wf.run(..., runtime=runtime)``: the run starts at once in the runtime's
  task group and lives until it ends or the runtime's block does.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ._core.state import Broken, Cancelled, Completed, Failed, Outcome, TimedOut
from ._core.ticks import CancelRequested, EventSent
from .errors import (
    WorkflowCancelledByUser,
    WorkflowRuntimeError,
    WorkflowTimeoutError,
)
from .events import Event, StopEvent
from .runtime import BasicRuntime, ExternalRunAdapter, Runtime
from .runtime._driver import Driver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Generator
    from types import TracebackType

    from .context import Context
    from .workflow import Workflow

__all__ = ["WorkflowHandler"]


class _Sent:
    """What ``send_event`` returns: the event is already sent.  Awaiting this
    waits until the run's runtime has it safe (recorded, in a runtime that
    keeps runs), so code written for an async ``send_event`` keeps working."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: ExternalRunAdapter) -> None:
        self._adapter = adapter

    def __await__(self) -> Generator[Any, None, None]:
        return self._adapter.wait_accepted().__await__()


_DETACHED = BasicRuntime()
"""Only makes adapters (``open_run`` needs no running runtime) for runs that are
awaited directly."""


class WorkflowHandler:
    """One run of a workflow, seen from the caller."""

    __slots__ = (
        "_adapter",
        "_cancelled_by_caller",
        "_ctx",
        "_error",
        "_observed",
        "_own_runtime",
        "_run_id",
        "_start_event",
        "_workflow",
    )

    def __init__(
        self,
        workflow: Workflow,
        start_event: Event | None,
        ctx: Context[Any],
        run_id: str,
        runtime: Runtime | None,
    ) -> None:
        self._workflow = workflow
        self._start_event = start_event
        self._ctx = ctx
        self._run_id = run_id
        self._adapter: ExternalRunAdapter | None = None
        self._own_runtime: BasicRuntime | None = None
        self._observed = False
        self._cancelled_by_caller = False
        self._error: BaseException | None = None
        if runtime is not None:
            self._launch(runtime)

    def _open(self, runtime: Runtime) -> Driver:
        if self._start_event is not None:
            runtime.check_event(self._start_event)  # a runtime that records runs refuses now
        internal, external = runtime.open_run(self._run_id)
        saved = self._ctx._saved_run()
        driver = Driver(self._workflow, self._start_event, internal, self._ctx.store, saved)
        self._ctx._attach(external, lambda: driver.state)
        self._adapter = external
        return driver

    def _launch(self, runtime: Runtime) -> None:
        driver = self._open(runtime)
        runtime.spawn(driver.run, name=f"anyflow run {self._run_id}")

    def _require_started(self, what: str) -> ExternalRunAdapter:
        if self._adapter is None:
            raise WorkflowRuntimeError(
                f"{what} needs a started run: use `async with wf.run(...) as handler:`, "
                "`await wf.run(...)`, or pass runtime= to wf.run()"
            )
        return self._adapter

    # Running scoped to a block, or awaited.

    async def __aenter__(self) -> WorkflowHandler:
        if self._adapter is None:
            runtime = BasicRuntime()
            await runtime.__aenter__()
            self._own_runtime = runtime
            try:
                self._launch(runtime)
            except BaseException as exc:
                await runtime.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        adapter = self._adapter
        assert adapter is not None
        runtime, self._own_runtime = self._own_runtime, None
        if exc is None:
            try:
                await adapter.wait_finished()
            except BaseException as waiting_exc:  # cancelled from outside while waiting
                if runtime is not None:
                    await runtime.__aexit__(
                        type(waiting_exc), waiting_exc, waiting_exc.__traceback__
                    )
                raise
        elif adapter.outcome is None and runtime is None:
            # A run in a shared runtime: ask it to stop.  The runtime's own scope
            # guarantees that it leaves nothing behind.
            self._cancelled_by_caller = True
            adapter.send_tick(CancelRequested())
        if runtime is not None:
            # Leaving our own runtime cancels the run if it is still going, and
            # returns once nothing of it is left; the block's exception, if
            # any, then propagates as it is.
            await runtime.__aexit__(exc_type, exc, tb)
        if exc is None and not self._observed and not self._cancelled_by_caller:
            error = self._failure()
            if error is not None:
                self._observed = True
                raise error

    def __await__(self) -> Generator[Any, None, Any]:
        return self._await().__await__()

    async def _await(self) -> Any:
        if self._adapter is None:
            # Nobody else can reach this run, so its driver runs right here in
            # the awaiting task: no runtime task group to set up and tear down.
            await self._open(_DETACHED).run()
            assert self._adapter is not None
        outcome = await self._adapter.wait_finished()
        return self._unwrap(outcome)

    # Results.

    def _failure(self) -> BaseException | None:
        assert self._adapter is not None
        outcome = self._adapter.outcome
        if outcome is None or isinstance(outcome, Completed):
            return None
        if self._error is None:
            self._error = _exception_of(outcome, self._run_id)
        return self._error

    def _unwrap(self, outcome: Outcome) -> Any:
        self._observed = True
        error = self._failure()
        if error is not None:
            raise error
        assert isinstance(outcome, Completed)
        stop = outcome.stop_event
        return stop.result if type(stop) is StopEvent else stop

    def is_done(self) -> bool:
        """Whether the run has ended (completed, failed, timed out or cancelled)."""
        return self._adapter is not None and self._adapter.outcome is not None

    def result(self) -> Any:
        """The result of a finished run (raising its exception if it failed).

        :raises WorkflowRuntimeError: if the run has not finished.
        """
        adapter = self._require_started("result()")
        if adapter.outcome is None:
            raise WorkflowRuntimeError("the run has not finished: `await handler` first")
        return self._unwrap(adapter.outcome)

    def exception(self) -> BaseException | None:
        """The exception a finished run ended with, or None if it completed.

        :raises WorkflowRuntimeError: if the run has not finished.
        """
        adapter = self._require_started("exception()")
        if adapter.outcome is None:
            raise WorkflowRuntimeError("the run has not finished: `await handler` first")
        self._observed = True
        return self._failure()

    def get_stop_event(self) -> StopEvent | None:
        """The StopEvent a completed run ended with, or None."""
        outcome = self._adapter.outcome if self._adapter is not None else None
        return outcome.stop_event if isinstance(outcome, Completed) else None

    # Talking to the run.

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def ctx(self) -> Context[Any]:
        """The run's context, as the caller sees it."""
        return self._ctx

    def stream_events(self, expose_internal: bool = False) -> AsyncIterator[Event]:
        """The events the run publishes, ending with its last (a StopEvent, or a
        WorkflowFailedEvent, WorkflowCancelledEvent or WorkflowTimedOutEvent).

        One consumer at a time; events published before you start are kept for
        you.  With ``expose_internal``, also ``InternalEvent``s: a
        ``StepStateChanged`` for every step attempt that starts or ends from then
        on, and ``WorkflowIdleEvent`` when every unfinished step waits for input.
        """
        return self._require_started("stream_events()").events(expose_internal=expose_internal)

    def send_event(self, event: Event, step: str | None = None) -> _Sent:
        """Send ``event`` into the run (to ``step`` only, if given).

        The event is sent when this returns; the result may be awaited or not.

        :raises WorkflowRuntimeError: if no step accepts the event or the run has finished.
        """
        adapter = self._require_started("send_event()")
        self._workflow._check_sendable(event, step, self._ctx._live_state())
        adapter.send_tick(EventSent(event, step, external=True))
        return _Sent(adapter)

    async def wait_recorded(self) -> None:
        """Return once the run, and every event sent to it so far, are recorded
        by its runtime (at once for a runtime that keeps no runs): from then
        on another process of the application can find the run."""
        await self._require_started("wait_recorded()").wait_accepted()

    async def cancel_run(self) -> None:
        """Stop the run and wait until nothing of it is running.  No-op once it ended."""
        adapter = self._require_started("cancel_run()")
        if adapter.outcome is None:
            self._cancelled_by_caller = True
            with contextlib.suppress(WorkflowRuntimeError):  # it may have just finished
                adapter.send_tick(CancelRequested())
        await adapter.wait_finished()

    def __repr__(self) -> str:
        state = "not started" if self._adapter is None else "done" if self.is_done() else "running"
        return f"<WorkflowHandler {type(self._workflow).__name__} run {self._run_id!r} {state}>"


def _exception_of(outcome: Outcome, run_id: str) -> BaseException:
    if isinstance(outcome, Failed):
        error: BaseException = outcome.error
        return error
    if isinstance(outcome, TimedOut):
        running = ", ".join(outcome.active_steps) or "none"
        return WorkflowTimeoutError(
            f"run {run_id!r} timed out after {outcome.timeout:g}s (steps still running: "
            f"{running}); raise the workflow's timeout= or make those steps faster"
        )
    if isinstance(outcome, Broken):
        if isinstance(outcome.error, BaseException):
            return outcome.error
        return WorkflowRuntimeError(outcome.message)
    assert isinstance(outcome, Cancelled)
    return WorkflowCancelledByUser(f"run {run_id!r} was cancelled")
