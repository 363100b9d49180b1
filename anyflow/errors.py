"""anyflow's exceptions.

Our exception hierarchy::

    AnyflowError
    ├── WorkflowValidationError     the workflow's shape is wrong (raised before anything runs)
    ├── WorkflowRuntimeError        the run broke a rule while running
    ├── WorkflowTimeoutError        the run reached its timeout (also a TimeoutError)
    ├── WorkflowCancelledByUser     the run was cancelled by its caller
    └── ContextStateError           a Context method was called in the wrong phase

An exception raised by a step reaches the caller as itself, not wrapped, with a
note naming the step.
"""

from __future__ import annotations

__all__ = [
    "AnyflowError",
    "ContextStateError",
    "WorkflowCancelledByUser",
    "WorkflowRuntimeError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
]


class AnyflowError(Exception):
    """Base of every exception anyflow raises on its own account."""


class WorkflowValidationError(AnyflowError):
    """The workflow is malformed; raised when the class is defined or built."""


class WorkflowRuntimeError(AnyflowError):
    """The run cannot go on as asked (the message says why and what to do)."""


class WorkflowTimeoutError(AnyflowError, TimeoutError):
    """The run did not finish within the workflow's ``timeout``."""


class WorkflowCancelledByUser(AnyflowError):
    """The run was cancelled by its caller (``handler.cancel_run()``)."""


class ContextStateError(AnyflowError):
    """A Context method was called in a phase where it means nothing."""
