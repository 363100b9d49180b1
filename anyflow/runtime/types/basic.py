"""The internals of llama-index-workflows' basic runtime (its module
``workflows.plugins.basic``): its per-run queues and adapters and the context
variable of the current run's id.  The names import and refuse to be used;
``anyflow.plugins.basic``, the incumbent's path, hands them out beside
anyflow's ``BasicRuntime``."""

from __future__ import annotations

from ..._incumbent_internals import refused_module_names

__getattr__ = refused_module_names(
    "anyflow.plugins.basic",
    "anyflow's BasicRuntime keeps a run's queues in its adapters (anyflow.runtime); a step "
    "reads its run's id as ctx.run_id, and a test starts runs with wf.run() or "
    "anyflow.testing.WorkflowTestRunner",
    "AsyncioAdapterQueues",
    "ExternalAsyncioAdapter",
    "InternalAsyncioAdapter",
    "JournalRecord",
    "get_current_run_id",
    "setting_run_id",
)
