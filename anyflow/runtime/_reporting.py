"""How a run tells the outside what happened to it, besides its results.

The last event a run publishes (``terminal_event``: the stop event, or the
event that says how it failed, timed out, broke or was cancelled), the
``StepStateChanged`` events a step's start and end publish, and the log
lines the engine writes about runs (``docs/tracing.md``, "What anyflow logs").
Apart from the driver so that the control loop reads as a loop; the runtimes
that replay a recorded end (``terminal_event``) and the handler that notices
a dropped run (``log_unobserved``) use them too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._core.state import Broken, Cancelled, Completed, Failed, Outcome, TimedOut
from ..events import (
    Event,
    StepStateChanged,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
    with_exception,
)

if TYPE_CHECKING:
    from ..workflow import Workflow


log = logging.getLogger("anyflow")
"""What the engine says, each record with its run id (``docs/tracing.md``, "What
anyflow logs"): nothing at WARNING for what is handled (a retried attempt, a
failure a ``@catch_error`` step takes, a run failure its caller receives as an
exception); one line at INFO for those, with the traceback only at DEBUG; a
WARNING with the traceback for a run that failed while nobody can observe it."""


def _note(error: BaseException, text: str) -> None:
    notes = getattr(error, "__notes__", None)
    if notes is None:
        error.__notes__ = notes = []  # type: ignore[attr-defined]
    notes.append(text)


def terminal_event(outcome: Outcome) -> StopEvent:
    """The last event published by a run that ended with ``outcome``."""
    match outcome:
        case Completed(stop_event=stop_event):
            event: StopEvent = stop_event
            return event
        case Failed(step=step, error=error, attempts=attempts):
            failed = WorkflowFailedEvent(
                step_name=step,
                exception_type=type(error).__name__,
                exception_message=str(error),
                attempts=attempts,
            )
            if isinstance(error, BaseException):
                with_exception(failed, error)
            return failed
        case TimedOut(timeout=timeout, active_steps=active):
            return WorkflowTimedOutEvent(timeout=timeout, active_steps=active)
        case Broken(step=step, message=message):
            return WorkflowFailedEvent(
                step_name=step, exception_type="WorkflowRuntimeError", exception_message=message
            )
        case Cancelled():
            return WorkflowCancelledEvent()


def _log_failure(
    run_id: str, step: str, attempt: int, error: Exception, delay: float | None, catchable: bool
) -> None:
    """One INFO line for a failure the run handles (a retry, a ``@catch_error``
    step); the traceback only at DEBUG.  A failure that ends the run is logged
    with the run's end."""
    if delay is None and not catchable:
        return
    extra = {"anyflow_run_id": run_id}
    traceback = error if log.isEnabledFor(logging.DEBUG) else None
    if delay is not None:
        log.info(
            "run %s: step %r failed (attempt %d) with %r; retrying in %gs",
            run_id,
            step,
            attempt,
            error,
            delay,
            exc_info=traceback,
            extra=extra,
        )
    else:
        log.info(
            "run %s: step %r failed (attempt %d) with %r; its @catch_error step takes over",
            run_id,
            step,
            attempt,
            error,
            exc_info=traceback,
            extra=extra,
        )


def log_unobserved(run_id: str, workflow: Workflow, outcome: Outcome, how: str) -> None:
    """A WARNING, with the traceback, for a run that failed (or timed out, or
    broke) where nobody can receive the exception: ``how`` says why."""
    name = type(workflow).__name__
    error = getattr(outcome, "error", None)
    log.warning(
        "run %s of %s %s, %s",
        run_id,
        name,
        _how_it_ended(outcome),
        how,
        exc_info=error if isinstance(error, BaseException) else None,
        extra={"anyflow_run_id": run_id},
    )


def _how_it_ended(outcome: Outcome) -> str:
    match outcome:
        case Failed(step=step, error=error, attempts=attempts):
            return f"failed: step {step!r} raised {error!r} (attempt {attempts})"
        case TimedOut(timeout=timeout):
            return f"timed out after {timeout:g}s"
        case Broken(message=message):
            return f"broke: {message}"
        case Completed():
            return "completed"
        case Cancelled():
            return "was cancelled"


def _log_end(run_id: str, workflow: Workflow, outcome: Outcome, unobserved: bool) -> None:
    """A run's end: DEBUG when it completed or was cancelled; one INFO line
    when it failed (its caller receives the exception, with the traceback at
    DEBUG), unless its handler was dropped before the end: then nobody will,
    and it is a WARNING with the traceback."""
    extra = {"anyflow_run_id": run_id}
    name = type(workflow).__name__
    if isinstance(outcome, Completed | Cancelled):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run %s of %s %s", run_id, name, _how_it_ended(outcome), extra=extra)
    elif unobserved:
        log_unobserved(run_id, workflow, outcome, "and its handler was dropped before its end")
    elif log.isEnabledFor(logging.INFO):
        error = getattr(outcome, "error", None)
        traceback = log.isEnabledFor(logging.DEBUG) and isinstance(error, BaseException)
        log.info(
            "run %s of %s %s",
            run_id,
            name,
            _how_it_ended(outcome),
            exc_info=error if traceback else None,
            extra=extra,
        )


def _state_changed(
    name: str,
    state: str,
    worker_id: int,
    event: Event,
    output: Event | None = None,
    raised: str | None = None,
) -> StepStateChanged:
    return StepStateChanged(
        name=name,
        step_state=state,
        worker_id=worker_id,
        input_event_name=type(event).__name__,
        output_event_name=type(output).__name__ if output is not None else None,
        exception_type=raised,
    )
