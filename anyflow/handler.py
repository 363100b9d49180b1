"""``WorkflowHandler``: the caller's grip on one run, and who runs it.

A handler is returned by ``wf.run()``.  Nothing of a run may outlive the scope
that runs it, so what matters is *who* runs it.  The rules:

1. **A runtime that hosts runs.**  With ``runtime=`` (or ``Workflow(runtime=)``)
   a runtime whose block is entered (``async with runtime:``, or between
   ``await runtime.launch()`` and ``await runtime.destroy()``), the run starts
   at once in the runtime's task group and lives until it ends or the block
   does.  It goes on while the caller does anything else.

2. **``async with wf.run(...) as handler:``** (the recommended form).  The run
   lives inside the block, in a task group of its own.  Leaving the block
   normally waits for the run; leaving it with an exception cancels the run.
   Either way nothing of the run is left running afterwards.  A run that
   failed while nobody looked (no ``await handler``, ``result()`` or
   ``exception()``) raises its exception when the block ends.

3. **Otherwise the run is driven by whoever waits on it**, in the waiting task,
   in a task group that lives only as long as that wait:

   * ``await handler`` runs it to its end (and ``await handler.cancel_run()``
     to its cancellation).  A cancelled ``await`` cancels the run with it.
   * ``async for ev in handler.stream_events()`` runs it until it has an event
     to hand over *and* either ended or waits for input from outside (every
     unfinished step is in ``wait_for_event``, or the events it published ask
     for input).  Then the run is paused: its waiting steps are stopped and,
     when the run goes on, run again from their start and find their answer,
     which is what llama-index-workflows does with every wait.  The loop body
     runs while nothing of the run does; the next ``__anext__`` (or ``await
     handler``, or ``cancel_run()``) goes on with it.
   * ``handler.send_event(ev)`` and ``handler.ctx.send_event(ev)`` queue the
     event at any time; the run takes it when it next runs.

   So the run makes progress only while someone waits on it, and stopping to
   wait leaves nothing behind: a handler that is abandoned halfway simply
   stops.  The price: without a scope, events published while steps are still
   working reach the loop when the run next pauses or ends, not while the step
   works; a program that must see them live (token streaming, cancelling a
   step that never ends by itself) uses rule 1 or 2.  A handler that nobody
   awaits, streams or enters never runs; it warns (``RuntimeWarning``) when it
   is garbage collected, like a coroutine never awaited.

Only one task drives a run at a time; another one that awaits it waits for
the driver to pause, then drives it itself.

The handler holds the rules; the adapter decorator and view behind rule 3
are ``_driven``'s, the stream iterator that drives a run is
``_handler_stream``'s, and what a finished run gives its caller is
``_run_results``'s.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

import anyio

from ._core.state import Cancelled, Completed
from ._core.ticks import CancelRequested, EventSent
from ._driven import Driven, RunView
from ._handler_stream import HandlerStream
from ._run_results import exception_of
from .errors import WorkflowRuntimeError
from .events import Event, StopEvent, WorkflowCancelledEvent
from .runtime import BasicRuntime, ExternalRunAdapter, Runtime
from .runtime._driver import Driver, log_unobserved

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Generator
    from types import TracebackType

    from ._core.state import Outcome
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


class WorkflowHandler:
    """One run of a workflow, seen from the caller (see the module docstring
    for who runs it)."""

    __slots__ = (
        "__weakref__",
        "_adapter",
        "_cancelled_by_caller",
        "_ctx",
        "_drive_ended",
        "_driven",
        "_driving",
        "_error",
        "_observed",
        "_own_runtime",
        "_run_id",
        "_start_event",
        "_streamed",
        "_touched",
        "_view",
        "_workflow",
    )

    def __init__(
        self,
        workflow: Workflow | None = None,
        start_event: Event | None = None,
        ctx: Context[Any] | None = None,
        run_id: str | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if workflow is None:
            # ``WorkflowHandler(ctx=ctx)``, as llama-index-workflows' programs
            # write it to carry a context: a handler without a run.
            if ctx is None:
                raise TypeError(
                    "WorkflowHandler() needs a context (WorkflowHandler(ctx=ctx)); a run's "
                    "handler comes from wf.run()"
                )
            workflow, run_id = ctx._workflow, None
        self._workflow = workflow
        self._start_event = start_event
        self._ctx: Context[Any] = ctx  # type: ignore[assignment]  # set whenever run_id is
        self._run_id = run_id or ""
        self._adapter: ExternalRunAdapter | None = None
        self._own_runtime: BasicRuntime | None = None
        self._observed = False
        self._cancelled_by_caller = False
        self._error: BaseException | None = None
        self._driven: Driven | None = None
        self._view = RunView(workflow)
        self._driving = False
        self._drive_ended: anyio.Event | None = None
        self._streamed = False
        self._touched = True
        if run_id is None:
            return  # made from a context alone: no run
        if runtime is None:
            runtime = workflow.runtime
        if isinstance(runtime, BasicRuntime) and not runtime.is_hosting:
            self._open(runtime, driven=True)
            self._touched = False
        else:
            # Hosted by the runtime (whose spawn() refuses if its block is not entered).
            driver = self._open(runtime)
            assert driver is not None
            runtime.spawn(driver.run, name=f"anyflow run {self._run_id}")

    def _open(self, runtime: Runtime, driven: bool = False) -> Driver | None:
        """Make the run's adapters and its context's caller face; the driver of
        a hosted run (a driven run gets its driver when it is first driven)."""
        if self._start_event is not None:
            runtime.check_event(self._start_event)  # a runtime that records runs refuses now
        internal, external = runtime.open_run(self._run_id)
        view = self._view
        view.adapter = external
        driver = None
        if driven:
            view.saved = self._ctx._saved_run()
            self._driven = Driven(internal, view)
        else:
            saved = self._ctx._saved_run()
            driver = Driver(self._workflow, self._start_event, internal, self._ctx.store, saved)
            view.driver = driver
        self._ctx._attach(external, view)  # a RunView is its live_state(), with no bound method
        self._adapter = external
        return driver

    def _require_started(self, what: str) -> ExternalRunAdapter:
        """The run's adapter.

        :raises WorkflowRuntimeError: for a handler made from a context alone.
        """
        if self._adapter is None:
            raise WorkflowRuntimeError(
                f"{what} needs a run, and this handler was made from a context alone "
                "(WorkflowHandler(ctx=...)): start one with wf.run(ctx=handler.ctx)"
            )
        return self._adapter

    # Driving a run that no runtime hosts (rule 3).

    async def _drive(self, *, pause_when_idle: bool, claimed: bool = False) -> None:
        """Run the run in this task: to its end, or (``pause_when_idle``) until
        it waits for input with events for the stream.  If another task drives
        it, wait until that one stops instead (``claimed``: this task already
        holds the drive).

        The driver runs in this coroutine's own frame (no helper coroutine in
        between): every frame on the way to ``Driver.run`` stays alive for as
        long as the run does, a few hundred bytes per run in flight."""
        if not claimed:
            if self._driving:
                if self._drive_ended is None:
                    self._drive_ended = anyio.Event()
                await self._drive_ended.wait()
                return
            self._driving = True
        driver = self._next_driver(pause_when_idle)
        try:
            await driver.run()
        finally:
            self._drive_stopped(driver)

    def _next_driver(self, pause_when_idle: bool) -> Driver:
        """The driver of the drive that starts now (claimed by the caller);
        ``_drive_stopped`` must follow, however it ends.  The drive is
        released here if no driver can be made."""
        driven = self._driven
        assert driven is not None
        driven.pause_when_idle = pause_when_idle  # before the driver reads observes_ticks
        view = self._view
        try:
            if view.driver is None:
                # A first drive to the end never pauses: it talks to the runtime's
                # adapter directly, so `await wf.run()` costs what it always did.
                adapter = driven if pause_when_idle else driven.inner
                driver = Driver(
                    self._workflow, self._start_event, adapter, self._ctx.store, view.saved
                )
            else:
                # Paused before: a new driver goes on from where the last one
                # stopped (it takes the paused state in ``Driven.recover``).
                assert view.resume_from is not None
                driver = Driver(self._workflow, None, driven, self._ctx.store)
        except BaseException:
            self._release_drive()
            raise
        view.driver = driver
        return driver

    def _drive_stopped(self, driver: Driver) -> None:
        """A drive ended (``driver.run()`` returned or raised): keep a paused
        run's state for the next drive, and release the drive."""
        driven = self._driven
        assert driven is not None
        if driven.paused:
            driven.paused = False
            self._view.resume_from = driver.state
        self._release_drive()

    def _release_drive(self) -> None:
        self._driving = False
        ended, self._drive_ended = self._drive_ended, None
        if ended is not None:
            ended.set()

    async def _drive_to_end(self) -> None:
        assert self._adapter is not None
        while self._adapter.outcome is None:
            await self._drive(pause_when_idle=False)

    async def _hosted_drive(self) -> None:
        """The body of a run hosted by the handler's own runtime (``async with``);
        the drive was claimed before it was spawned."""
        await self._drive(pause_when_idle=False, claimed=True)

    # Running scoped to a block, or awaited.

    async def __aenter__(self) -> WorkflowHandler:
        self._touched = True
        adapter = self._require_started("async with handler")
        if self._driven is not None and adapter.outcome is None:
            runtime = BasicRuntime()
            await runtime.__aenter__()
            self._own_runtime = runtime
            if self._driving:
                # Another task drives it now: take it over when that one stops.
                runtime.spawn(self._drive_to_end, name=f"anyflow run {self._run_id}")
            else:
                self._driving = True
                runtime.spawn(self._hosted_drive, name=f"anyflow run {self._run_id}")
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
        self._touched = True
        adapter = self._require_started("await handler")
        if self._driven is not None:
            # As _drive_to_end, but the first drive runs in this frame: the
            # frames under Driver.run live as long as the run (see _drive).
            while adapter.outcome is None:
                if self._driving:
                    await self._drive(pause_when_idle=False)  # waits for that driver
                    continue
                self._driving = True
                driver = self._next_driver(False)
                try:
                    await driver.run()
                finally:
                    self._drive_stopped(driver)
        outcome = await adapter.wait_finished()
        return self._unwrap(outcome)

    async def stop_event_result(self) -> StopEvent:
        """Wait for the run's end; the StopEvent it ended with (for a failed run,
        its exception is raised)."""
        await self._await()
        stop = self.get_stop_event()
        assert stop is not None
        return stop

    # Results.

    def _failure(self) -> BaseException | None:
        assert self._adapter is not None
        outcome = self._adapter.outcome
        if outcome is None or isinstance(outcome, Completed):
            return None
        if self._error is None:
            self._error = exception_of(outcome, self._run_id)
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

    def done(self) -> bool:
        """The same as ``is_done()`` (llama-index-workflows' older name)."""
        return self.is_done()

    def cancelled(self) -> bool:
        """Whether the run ended because it was cancelled."""
        return self._adapter is not None and isinstance(self._adapter.outcome, Cancelled)

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
        """The StopEvent the run ended with: its own for a completed run, a
        ``WorkflowCancelledEvent`` for a cancelled one; None otherwise."""
        outcome = self._adapter.outcome if self._adapter is not None else None
        if isinstance(outcome, Cancelled):
            return WorkflowCancelledEvent()
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
        A run no runtime hosts is driven by this loop (see the module docstring).

        :raises WorkflowRuntimeError: while another loop reads the stream, or
            once a loop has read it to its end.
        """
        self._touched = True
        adapter = self._require_started("stream_events()")
        if self._streamed:
            raise WorkflowRuntimeError(
                f"All the streamed events have already been consumed: a loop read run "
                f"{self._run_id!r}'s stream to its end, and a run's stream is read once; "
                "keep the events from that loop, or `await handler` for the result"
            )
        inner = adapter.events(expose_internal=expose_internal)
        if expose_internal:
            self._view.expose_internal = True
        return HandlerStream(self, inner, expose_internal)

    def send_event(self, event: Event, step: str | None = None) -> _Sent:
        """Send ``event`` into the run (to ``step`` only, if given).

        The event is sent when this returns; the result may be awaited or not.
        A run driven by its caller takes it when it next runs.

        :raises WorkflowRuntimeError: if no step accepts the event or the run has finished.
        """
        adapter = self._require_started("send_event()")
        self._workflow._check_sendable(event, step, self._ctx._live_state())
        adapter.send_tick(EventSent(event, step, external=True))
        return _Sent(adapter)

    def check_sendable(self, event: Event, step: str | None = None) -> None:
        """Raise now what ``send_event(event, step)`` would raise, without sending
        anything: return if the run would take ``event`` from outside at this
        moment (a step, or ``step``, accepts it, or one of the run's waits
        matches it now; a ``HumanResponseEvent`` is kept for a later wait).

        :raises TypeError: if ``event`` is not an ``Event``.
        :raises WorkflowStepDoesNotExistError: if the workflow has no ``step``.
        :raises WorkflowRuntimeError: if no step (or not ``step``) accepts it,
            or the run has finished.
        """
        adapter = self._require_started("check_sendable()")
        self._workflow._check_sendable(event, step, self._ctx._live_state())
        if adapter.outcome is not None:
            raise WorkflowRuntimeError(
                f"run {self._run_id!r} has finished and takes no more events: "
                f"{type(event).__name__} would not be delivered"
            )

    async def wait_finished(self) -> Outcome:
        """Wait for the run's end and return how it ended, without raising the
        exception of a run that failed: a ``Completed``, ``Failed``,
        ``TimedOut``, ``Cancelled`` or ``Broken`` outcome (the types of
        ``anyflow.runtime.vocabulary``).  A run no runtime hosts is driven here
        to its end, as by ``await handler``.

        The outcome counts as received: a failure it holds is not raised again
        when an ``async with`` block of the run ends, nor logged when the
        handler is dropped (``handler.exception()`` still gives the exception).
        """
        self._touched = True
        adapter = self._require_started("wait_finished()")
        if self._driven is not None:
            await self._drive_to_end()
        outcome = await adapter.wait_finished()
        self._observed = True
        return outcome

    async def wait_recorded(self) -> None:
        """Return once the run, and every event sent to it so far, are recorded
        by its runtime (at once for a runtime that keeps no runs): from then
        on another process of the application can find the run."""
        await self._require_started("wait_recorded()").wait_accepted()

    async def cancel_run(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the incumbent's signature
        """Stop the run and wait until nothing of it is running.  No-op once it ended.

        A run driven by its caller is driven here to its cancellation.  With
        ``timeout``, stop waiting after that many seconds (the run still ends,
        in its runtime's scope).
        """
        self._touched = True
        adapter = self._require_started("cancel_run()")
        if adapter.outcome is None:
            self._cancelled_by_caller = True
            with contextlib.suppress(WorkflowRuntimeError):  # it may have just finished
                adapter.send_tick(CancelRequested())
        with anyio.move_on_after(timeout) if timeout is not None else contextlib.nullcontext():
            if self._driven is not None:
                await self._drive_to_end()
            await adapter.wait_finished()

    def cancel(self) -> None:
        """Ask the run to stop, without waiting (``await handler.cancel_run()``
        also waits until it has)."""
        adapter = self._require_started("cancel()")
        self._touched = True
        if adapter.outcome is None:
            self._cancelled_by_caller = True
            with contextlib.suppress(WorkflowRuntimeError):
                adapter.send_tick(CancelRequested())

    def __repr__(self) -> str:
        state = "done" if self.is_done() else "running"
        return f"<WorkflowHandler {type(self._workflow).__name__} run {self._run_id!r} {state}>"

    def __del__(self) -> None:
        adapter = getattr(self, "_adapter", None)
        if adapter is None:
            return
        if getattr(self, "_touched", True):
            self._report_unobserved(adapter)
            return
        if adapter.outcome is not None:
            return
        warnings.warn(
            f"run {self._run_id!r} of {type(self._workflow).__name__} never ran: its "
            "handler was dropped without being awaited, streamed or entered. Write "
            "`await wf.run(...)`, `async with wf.run(...) as handler:`, or iterate "
            "handler.stream_events()",
            RuntimeWarning,
            stacklevel=2,
        )

    def _report_unobserved(self, adapter: ExternalRunAdapter) -> None:
        """A dropped handler's failure that nobody received is logged once, with
        its traceback (a failure the caller received is theirs to report); a
        hosted run that goes on without its handler is logged when it ends."""
        if self._observed or self._cancelled_by_caller:
            return
        outcome = adapter.outcome
        if outcome is None:
            driver = self._view.driver
            if driver is not None and self._driven is None:
                driver.unobserved = True
        elif not isinstance(outcome, Completed | Cancelled):
            log_unobserved(
                self._run_id,
                self._workflow,
                outcome,
                "and its handler was dropped without anyone receiving its exception "
                "(`await handler`, handler.result() or handler.exception())",
            )
