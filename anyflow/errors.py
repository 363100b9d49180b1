"""anyflow's exceptions.

Our exception hierarchy::

    AnyflowError
    ├── WorkflowValidationError     the workflow's shape is wrong (raised before anything runs)
    │   └── WorkflowConfigurationError  no start event, no stop event, or no steps at all
    ├── WorkflowRuntimeError        the run broke a rule while running
    │   ├── WorkflowStepDoesNotExistError  an event was addressed to a step the workflow lacks
    │   ├── StartEventError         run() cannot build or take the start event (a TypeError
    │   │                           and a ValueError)
    │   └── StepOutputError         a step returned something that is not an Event (a TypeError)
    ├── WorkflowTimeoutError        the run reached its timeout (also a TimeoutError)
    ├── WaitTimeoutError            ctx.wait_for_event() timed out, in the step (a TimeoutError)
    ├── StepTimeoutError            a step attempt outlived @step(timeout=...) (a TimeoutError)
    ├── ResourceError               a step's resource could not be made or closed
    │   └── ResourceCycleError      resource factories that need each other (also a ValueError)
    ├── WorkflowCancelledByUser     the run was cancelled by its caller
    ├── ContextStateError           a Context method was called in the wrong phase
    │   └── NotInStepError          get_step_context() outside a step (a WorkflowRuntimeError too)
    ├── ContextSerdeError           a saved context cannot be written or read (also a ValueError)
    ├── StateKeyError               ctx.store.get(path) found no value (a KeyError and a ValueError)
    ├── StateTypeError              set_state(obj) got another class (a TypeError and a ValueError)
    └── DurabilityError             a durable run cannot be recorded or recovered
        ├── JournalCorruptError     a run's journal cannot be read back (names the run and record)
        ├── WorkflowChangedError    a run is resumed with a different step graph
        ├── RunLockedError          another live process (or runtime) is executing the run
        ├── LeaseLostError          this process lost its claim on a run to another one
        └── StoreUnavailableError   the store cannot write or read now (disk full, database down)

An exception raised by a step reaches the caller as itself, not wrapped, with a
note naming the step.
"""

from __future__ import annotations

__all__ = [
    "AnyflowError",
    "ContextSerdeError",
    "ContextStateError",
    "NotInStepError",
    "DurabilityError",
    "JournalCorruptError",
    "LeaseLostError",
    "RunLockedError",
    "WorkflowChangedError",
    "ResourceCycleError",
    "ResourceError",
    "StoreUnavailableError",
    "StateKeyError",
    "StateTypeError",
    "StartEventError",
    "StepOutputError",
    "StepTimeoutError",
    "WaitTimeoutError",
    "WorkflowCancelledByUser",
    "WorkflowConfigurationError",
    "WorkflowRuntimeError",
    "WorkflowStepDoesNotExistError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
]


class AnyflowError(Exception):
    """Base of every exception anyflow raises on its own account."""


class WorkflowValidationError(AnyflowError):
    """The workflow is malformed; raised when the class is defined or built."""


class WorkflowConfigurationError(WorkflowValidationError):
    """The workflow lacks what every run needs: steps, a step that accepts the
    start event, or a step that returns a StopEvent.  llama-index-workflows
    raises an exception of this name for these cases, so code that catches it
    keeps working; it is a ``WorkflowValidationError`` like every other shape
    problem."""


class WorkflowRuntimeError(AnyflowError):
    """The run cannot go on as asked (the message says why and what to do)."""


class WorkflowStepDoesNotExistError(WorkflowRuntimeError):
    """An event was sent to a step, by name, that the workflow does not have."""


class WorkflowTimeoutError(AnyflowError, TimeoutError):
    """The run did not finish within the workflow's ``timeout``."""


class WaitTimeoutError(AnyflowError, TimeoutError):
    """No matching event came within ``wait_for_event(timeout=...)``."""


class StepTimeoutError(AnyflowError, TimeoutError):
    """A step attempt took longer than its ``@step(timeout=...)``; it counts as a
    failure of that attempt, so the step's retry policy applies."""


class StartEventError(WorkflowRuntimeError, TypeError, ValueError):
    """``wf.run()`` cannot build or take the start event: fields its start event
    class does not take, or a start event that is not one.  A ``ValueError``
    too: llama-index-workflows raises that for a ``start_event`` that is not a
    ``StartEvent``."""


class StepOutputError(WorkflowRuntimeError, TypeError):
    """A step returned something other than an Event or None (not retried: the
    code is wrong, not the weather)."""


class ResourceError(AnyflowError):
    """A resource's factory (or its context manager) raised: the message names the
    step and the parameter, and the original exception is the ``__cause__``.  It
    fails the step attempt, so the step's retry policy applies."""


class ResourceCycleError(ResourceError, ValueError):
    """Resource factories need each other, in a cycle (the message names it).  A
    ``ValueError`` too, as in llama-index-workflows."""


class WorkflowCancelledByUser(AnyflowError):
    """The run was cancelled by its caller (``handler.cancel_run()``)."""


class ContextStateError(AnyflowError):
    """A Context method was called in a phase where it means nothing."""


class NotInStepError(ContextStateError, WorkflowRuntimeError):
    """``Context.get_step_context()`` was called where no step runs.  A
    ``WorkflowRuntimeError`` too: llama-index-workflows raises that here."""


class ContextSerdeError(AnyflowError, ValueError):
    """A context cannot be saved (a value is not JSON-safe) or restored (the data
    is corrupt, from another version or workflow, or names an unknown event
    type).  The message gives the JSON path of the problem."""


class StateKeyError(AnyflowError, KeyError, ValueError):
    """``ctx.store.get(path)`` found no value at ``path`` and was given no default.

    A ``KeyError``, as for a dictionary, and a ``ValueError``, which is what
    llama-index-workflows raises there, so code written for either catches it."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


class StateTypeError(AnyflowError, TypeError, ValueError):
    """``ctx.store.set_state(obj)`` got an object of a class that is not the run's
    state class (nor, for a pydantic state, one of its parents).  A ``ValueError``
    too, as in llama-index-workflows."""


class DurabilityError(AnyflowError):
    """A durable run cannot be recorded or recovered.  Nothing recorded is changed."""


class JournalCorruptError(DurabilityError):
    """A record of a run's journal is missing, damaged or unreadable; the message
    names the run, the kind of record and its position."""


class WorkflowChangedError(DurabilityError):
    """A run is resumed with a workflow whose step graph is not the one it was
    recorded with; the message names what changed."""


class RunLockedError(DurabilityError):
    """Another live process (or another runtime of this one) holds the run's lease."""


class LeaseLostError(DurabilityError):
    """This process's lease on a run was taken over (it had expired), so it must
    stop writing that run."""


class StoreUnavailableError(DurabilityError):
    """The durable store failed to write or read (a full disk, a file-size limit,
    a database that cannot be reached, a wait for it that timed out).  Nothing
    was recorded by the failing call; the same call may succeed once the store
    works again, so a server answers 503 and retries the runs it stopped."""
