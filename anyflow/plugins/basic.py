"""``anyflow.plugins.basic``: ``BasicRuntime`` and ``basic_runtime`` under
llama-index-workflows' module path (``workflows.plugins.basic``)."""

from __future__ import annotations

from ..runtime import BasicRuntime as BasicRuntime
from ..runtime import basic_runtime as basic_runtime

__all__ = ["BasicRuntime", "basic_runtime"]
