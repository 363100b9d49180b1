"""llama-index-workflows' path ``workflows.runtime.types.plugin``: the runtime
interface a runtime plugin implements.  Thin re-exports of ``anyflow.runtime``;
the incumbent's internal helpers of that module import and refuse to be used."""

from __future__ import annotations

from ..._incumbent_internals import refused_module_names
from .._adapters import ExternalRunAdapter as ExternalRunAdapter
from .._adapters import InternalRunAdapter as InternalRunAdapter
from .._adapters import Runtime as Runtime

__all__ = ["ExternalRunAdapter", "InternalRunAdapter", "Runtime"]

_INSTEAD = "write a runtime against anyflow.runtime.Runtime and its adapters (docs/architecture.md)"

__getattr__ = refused_module_names(
    __name__,
    _INSTEAD,
    "WaitResultTick",
    "WaitResultTimeout",
    "WaitForNextTaskResult",
    "RegisteredWorkflow",
    "RunContext",
    "RunContextContainer",
    "WorkflowSet",
    "SnapshottableAdapter",
    "V2RuntimeCompatibilityShim",
    "ControlLoopFunction",
    "WorkflowRunFunction",
)
