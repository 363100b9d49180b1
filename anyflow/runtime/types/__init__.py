"""llama-index-workflows' path ``workflows.runtime.types``, for imports that
port by a change of names: ``plugin`` holds the runtime interface (anyflow's
own, re-exported); ``ticks``, ``internal_state`` and ``step_id`` name the
incumbent's internals, which import and refuse to be used."""
