"""``anyflow.plugins.basic``: ``BasicRuntime`` and ``basic_runtime`` under
llama-index-workflows' module path (``workflows.plugins.basic``).

The incumbent's module also holds the machinery of its basic runtime (its
per-run queues and adapters, the current run id's context variable): those
names import and refuse to be used (``anyflow.runtime.types.basic``)."""

from __future__ import annotations

from ..runtime import BasicRuntime as BasicRuntime
from ..runtime import basic_runtime as basic_runtime
from ..runtime.types import basic as _refused

__all__ = ["BasicRuntime", "basic_runtime"]

__getattr__ = _refused.__getattr__
