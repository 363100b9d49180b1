"""anyflow: event-driven workflows with streaming, human in the loop and durable
runs, on asyncio or trio."""

from __future__ import annotations

from .context import Context as Context
from .decorators import catch_error as catch_error
from .decorators import step as step
from .errors import AnyflowError as AnyflowError
from .errors import ContextSerdeError as ContextSerdeError
from .errors import ContextStateError as ContextStateError
from .errors import ResourceError as ResourceError
from .errors import StepOutputError as StepOutputError
from .errors import StepTimeoutError as StepTimeoutError
from .errors import WaitTimeoutError as WaitTimeoutError
from .errors import WorkflowCancelledByUser as WorkflowCancelledByUser
from .errors import WorkflowConfigurationError as WorkflowConfigurationError
from .errors import WorkflowRuntimeError as WorkflowRuntimeError
from .errors import WorkflowStepDoesNotExistError as WorkflowStepDoesNotExistError
from .errors import WorkflowTimeoutError as WorkflowTimeoutError
from .errors import WorkflowValidationError as WorkflowValidationError
from .events import Event as Event
from .events import HumanResponseEvent as HumanResponseEvent
from .events import InputRequiredEvent as InputRequiredEvent
from .events import InternalEvent as InternalEvent
from .events import StartEvent as StartEvent
from .events import StepFailedEvent as StepFailedEvent
from .events import StepState as StepState
from .events import StepStateChanged as StepStateChanged
from .events import StopEvent as StopEvent
from .events import WorkflowCancelledEvent as WorkflowCancelledEvent
from .events import WorkflowFailedEvent as WorkflowFailedEvent
from .events import WorkflowIdleEvent as WorkflowIdleEvent
from .events import WorkflowTimedOutEvent as WorkflowTimedOutEvent
from .handler import WorkflowHandler as WorkflowHandler
from .resources import Resource as Resource
from .retry import ConstantDelayRetryPolicy as ConstantDelayRetryPolicy
from .retry import ExponentialBackoffRetryPolicy as ExponentialBackoffRetryPolicy
from .retry import RetryInfo as RetryInfo
from .retry import RetryPolicy as RetryPolicy
from .runtime import BasicRuntime as BasicRuntime
from .runtime import Runtime as Runtime
from .workflow import Workflow as Workflow

__all__ = [
    "AnyflowError",
    "BasicRuntime",
    "ConstantDelayRetryPolicy",
    "Context",
    "ContextSerdeError",
    "ContextStateError",
    "Event",
    "ExponentialBackoffRetryPolicy",
    "HumanResponseEvent",
    "InputRequiredEvent",
    "InternalEvent",
    "Resource",
    "ResourceError",
    "RetryInfo",
    "RetryPolicy",
    "Runtime",
    "StartEvent",
    "StepFailedEvent",
    "StepOutputError",
    "StepState",
    "StepStateChanged",
    "StepTimeoutError",
    "StopEvent",
    "WaitTimeoutError",
    "Workflow",
    "WorkflowCancelledByUser",
    "WorkflowCancelledEvent",
    "WorkflowConfigurationError",
    "WorkflowFailedEvent",
    "WorkflowHandler",
    "WorkflowIdleEvent",
    "WorkflowRuntimeError",
    "WorkflowStepDoesNotExistError",
    "WorkflowTimedOutEvent",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
    "catch_error",
    "step",
]

__version__ = "0.1.0"
