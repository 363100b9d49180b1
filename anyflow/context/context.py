"""``Context`` under llama-index-workflows' module path for it
(``workflows.context.context``), so imports written for it work unchanged.

The module also names the incumbent's private warning helpers, which code
written for it clears with ``cache_clear()``: ``_warn_get_result`` and
``_warn_is_running_in_step`` are anyflow's own (``Context.get_result()`` and
``ctx.is_running`` in a step warn as there).  ``_warn_cancel_before_start``
and ``_warn_cancel_in_step`` belong to a private cancel path that anyflow does
not have (``handler.cancel_run()`` cancels a run; nothing else does): those
names import and refuse to be used.
"""

from __future__ import annotations

from .._incumbent_internals import refused_module_names
from ._context import Context as Context
from ._context import _warn_get_result as _warn_get_result
from ._context import _warn_is_running_in_step as _warn_is_running_in_step

__all__ = ["Context"]

__getattr__ = refused_module_names(
    __name__,
    "cancel a run with `await handler.cancel_run()` (or handler.cancel()); a step ends its "
    "own run by returning a StopEvent",
    "_warn_cancel_before_start",
    "_warn_cancel_in_step",
)
