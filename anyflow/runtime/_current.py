"""The runtime a workflow uses when it is given none: ``get_current_runtime()``.

Inside ``with runtime.registering():`` that is ``runtime``; elsewhere it is
``basic_runtime``, one ``BasicRuntime`` for the process.  ``basic_runtime`` is
never entered by anyflow (a task group cannot outlive the block that opens
it), so runs made with it are driven by whoever awaits or streams them; enter
it (``async with basic_runtime:``) to host runs in the background of a block.
"""

from __future__ import annotations

from ._adapters import Runtime, _current_runtime
from ._basic import BasicRuntime

__all__ = ["basic_runtime", "get_current_runtime"]

basic_runtime = BasicRuntime()
"""The process's default runtime: workflows built without ``runtime=`` use it."""


def get_current_runtime() -> Runtime:
    """The runtime set by the innermost ``Runtime.registering()`` block, else
    ``basic_runtime``."""
    runtime = _current_runtime.get()
    return runtime if runtime is not None else basic_runtime
