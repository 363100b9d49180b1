"""llama-index-workflows' path ``workflows.runtime.types.ticks``.  Its tick
models are internals: the names import and refuse to be used.  anyflow's ticks
are ``anyflow.runtime.vocabulary``'s (``EventSent``, ``StepCompleted`` and the rest),
recorded by a durable run's journal and read back by ``anyflow.testing``'s
replay."""

from __future__ import annotations

from ..._incumbent_internals import refused_module_names

_INSTEAD = (
    "anyflow's ticks are the classes in anyflow.runtime.vocabulary; a finished run's "
    "ticks are read with anyflow.durable.journal or anyflow.testing's replay"
)

__getattr__ = refused_module_names(
    __name__,
    _INSTEAD,
    "TickStepResult",
    "TickAddEvent",
    "TickCancelRun",
    "TickIdleRelease",
    "TickPublishEvent",
    "TickTimeout",
    "TickWaiterTimeout",
    "TickSessionStart",
    "TickIdleCheck",
    "TickWakeup",
    "WorkflowTick",
)
