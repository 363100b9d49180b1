"""llama-index-workflows' path ``workflows.runtime.types.step_id``.  Its step id
is an internal: the name imports and refuses to be used; anyflow names a step
by its name (a string)."""

from __future__ import annotations

from ..._incumbent_internals import refused_module_names

__getattr__ = refused_module_names(
    __name__, "anyflow names a step by its name, a plain string", "StepId"
)
