"""The words the runtime interface speaks: ticks, commands, outcomes, run state.

A runtime, a runtime decorator, a journal, a replay or a drawing of a run reads
and writes these.  They are defined once, in the engine's pure core
(``anyflow._core``, private so the reducer may change its insides freely); this
module is their public name, and the layers above the engine (``durable``,
``dbos``, ``server``, ``testing``, ``graph``, ``tracing``, and users' own
runtimes) import them from here.

A module of its own rather than more names in ``anyflow.runtime``: the
vocabulary is some thirty data classes that most users of a runtime never
touch, and ``anyflow.runtime`` stays the short list of what hosts a run.

- A ``Tick`` is a fact that reached the run (``RunStarted``, ``EventSent``,
  ``StepCompleted``, ...); ``is_external`` says whether the caller sent it.
- A ``Command`` is what the reducer asks the driver to do (``StartWorker``,
  ``Publish``, ``ScheduleTimer``, ..., ``Finish``).
- An ``Outcome`` is how a run ended: ``Completed``, ``Failed``, ``Cancelled``,
  ``TimedOut`` or ``Broken``; ``RunState.outcome`` holds it once the run ended.
- ``RunState`` is a run as immutable data, shaped by its ``RunSpec``;
  ``reduce(state, tick)`` folds one tick into it (a journal's replay is a fold
  of its recorded ticks) and raises ``TickRejected`` for a tick that breaks
  the protocol.  ``run_spec(workflow)`` is the ``RunSpec`` of a workflow's
  runs: ``RunState.initial(run_spec(wf))`` is a run before its first tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from .._core.commands import CancelTimer as CancelTimer
from .._core.commands import CancelWorker as CancelWorker
from .._core.commands import Command as Command
from .._core.commands import Finish as Finish
from .._core.commands import Publish as Publish
from .._core.commands import ResumeWorker as ResumeWorker
from .._core.commands import ReturnCollected as ReturnCollected
from .._core.commands import ScheduleTimer as ScheduleTimer
from .._core.commands import StartWorker as StartWorker
from .._core.reducer import TickRejected as TickRejected
from .._core.reducer import reduce as reduce
from .._core.state import Broken as Broken
from .._core.state import Cancelled as Cancelled
from .._core.state import Completed as Completed
from .._core.state import Failed as Failed
from .._core.state import Outcome as Outcome
from .._core.state import RunSpec as RunSpec
from .._core.state import RunState as RunState
from .._core.state import RunStatus as RunStatus
from .._core.state import StepSpec as StepSpec
from .._core.state import TimedOut as TimedOut
from .._core.ticks import CancelRequested as CancelRequested
from .._core.ticks import EventCollected as EventCollected
from .._core.ticks import EventSent as EventSent
from .._core.ticks import RunResumed as RunResumed
from .._core.ticks import RunStarted as RunStarted
from .._core.ticks import StepCompleted as StepCompleted
from .._core.ticks import StepFailed as StepFailed
from .._core.ticks import Tick as Tick
from .._core.ticks import TimerFired as TimerFired
from .._core.ticks import WaitAbandoned as WaitAbandoned
from .._core.ticks import WaitStarted as WaitStarted
from .._core.ticks import is_external as is_external

if _TYPE_CHECKING:
    from ..workflow import Workflow

__all__ = [
    "Broken",
    "CancelRequested",
    "CancelTimer",
    "CancelWorker",
    "Cancelled",
    "Command",
    "Completed",
    "EventCollected",
    "EventSent",
    "Failed",
    "Finish",
    "Outcome",
    "Publish",
    "ResumeWorker",
    "ReturnCollected",
    "RunResumed",
    "RunSpec",
    "RunStarted",
    "RunState",
    "RunStatus",
    "ScheduleTimer",
    "StartWorker",
    "StepCompleted",
    "StepFailed",
    "StepSpec",
    "Tick",
    "TickRejected",
    "TimedOut",
    "TimerFired",
    "WaitAbandoned",
    "WaitStarted",
    "is_external",
    "reduce",
    "run_spec",
]


def run_spec(workflow: Workflow) -> RunSpec:
    """The ``RunSpec`` that shapes ``workflow``'s runs (its steps, what each
    accepts, their limits and timeouts), made when the workflow was built."""
    return workflow._spec
