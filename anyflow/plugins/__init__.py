"""``anyflow.plugins``: the runtime a workflow uses by default, under
llama-index-workflows' module path (``workflows.plugins``).

Thin re-exports; the runtimes are defined in ``anyflow.runtime``.
"""

from __future__ import annotations

from ..runtime import BasicRuntime as BasicRuntime
from ..runtime import basic_runtime as basic_runtime
from ..runtime import get_current_runtime as get_current_runtime

__all__ = ["BasicRuntime", "basic_runtime", "get_current_runtime"]
