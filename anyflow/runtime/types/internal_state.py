"""llama-index-workflows' path ``workflows.runtime.types.internal_state``.  Its
broker state is an internal: the names import and refuse to be used.  anyflow's
run state is ``anyflow.runtime.vocabulary.RunState``, read from a run with
``ctx.run_state()`` and saved with ``ctx.to_dict()``."""

from __future__ import annotations

from ..._incumbent_internals import refused_module_names

_INSTEAD = (
    "a run's state in anyflow is anyflow.runtime.vocabulary.RunState (ctx.run_state()); "
    "save and resume a run with ctx.to_dict() and Context.from_dict(workflow, data)"
)

__getattr__ = refused_module_names(
    __name__,
    _INSTEAD,
    "BrokerState",
    "BrokerConfig",
    "CollectionBinding",
    "CollectionStreamInstance",
    "CollectionReleaseState",
    "Delivery",
    "EventAttempt",
    "InProgressState",
    "InternalStepConfig",
    "InternalStepWorkerState",
)
