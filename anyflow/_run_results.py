"""What a finished run gives its caller: the result, or the exception to raise.

One place for the mapping from a run's ``Outcome`` to what ``await
handler``, ``handler.result()``/``exception()`` and ``ctx.get_result()``
give, so the handler and the context cannot disagree (and the context needs
no import of the handler for it).
"""

from __future__ import annotations

from typing import Any

from ._core.state import Broken, Cancelled, Completed, Failed, Outcome, TimedOut
from .errors import WorkflowCancelledByUser, WorkflowRuntimeError, WorkflowTimeoutError
from .events import StopEvent

__all__ = ["exception_of", "result_of"]


def result_of(outcome: Outcome, run_id: str) -> Any:
    """What awaiting a run that ended with ``outcome`` gives: its StopEvent's
    ``result`` (the stop event itself, for a subclass), or its exception, raised."""
    if not isinstance(outcome, Completed):
        raise exception_of(outcome, run_id)
    stop = outcome.stop_event
    return stop.result if type(stop) is StopEvent else stop


def exception_of(outcome: Outcome, run_id: str) -> BaseException:
    match outcome:
        case Failed(error=error) | Broken(error=BaseException() as error):
            exception: BaseException = error
            return exception
        case Broken(message=message):
            return WorkflowRuntimeError(message)
        case TimedOut(timeout=timeout, active_steps=active):
            running = ", ".join(active) or "none"
            # Starts with llama-index-workflows' wording, which programs match on.
            return WorkflowTimeoutError(
                f"Operation timed out after {timeout:g} seconds: run {run_id!r} timed out "
                f"after {timeout:g}s (steps still running: {running}); raise the "
                "workflow's timeout= or make those steps faster"
            )
        case Cancelled():
            return WorkflowCancelledByUser(f"run {run_id!r} was cancelled")
        case Completed():
            raise AssertionError("a completed run raises nothing")
