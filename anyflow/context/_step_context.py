"""``STEP_CONTEXT``: which step's context the current task (or worker thread) runs.

Set by the driver's worker before each step attempt and read by
``Context.get_step_context()``, for code a step calls without handing it
``ctx``. Held weakly (see ``_WeakContextVar``), so that a snapshot of the
task's context variables kept past the step does not keep the run alive.
"""

from __future__ import annotations

import contextvars
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["STEP_CONTEXT"]


class _WeakContextVar:
    """A context variable that holds its value weakly.

    Whatever runs in a step may snapshot the task's context variables and keep
    the snapshot for long (an event loop timer, a connection pool's callback);
    a strong reference there would keep the step's context, and through it the
    workflow and its store, alive for as long.  The driver's worker holds the
    step's context while the step runs, so the weak reference is live exactly
    then.
    """

    __slots__ = ("_var",)

    def __init__(self, name: str) -> None:
        self._var: contextvars.ContextVar[weakref.ref[Context[Any]] | None] = (
            contextvars.ContextVar(name, default=None)
        )

    def set(self, ctx: Context[Any]) -> None:
        self._var.set(weakref.ref(ctx))

    def get(self, default: None = None) -> Context[Any] | None:
        ref = self._var.get()
        return None if ref is None else ref()


STEP_CONTEXT = _WeakContextVar("anyflow_step_context")
"""The context of the step the current task (or worker thread) is running, for
``Context.get_step_context()``; set by the driver's worker before each step."""
