"""llama-index-workflows' path ``workflows.context.context_types``, for imports
that port by a change of names.

Its ``SerializedContext`` is the pydantic model of a saved context; anyflow's
saved context is the plain dict ``handler.ctx.to_dict()`` returns, read back
by ``Context.from_dict(workflow, data)``.  So the name imports, and building
one fails at once, saying what to write instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["SerializedContext"]

_NO_MODEL = (
    "llama-index-workflows' SerializedContext model has no counterpart in anyflow: a saved "
    "context is the dict handler.ctx.to_dict() returns; pass it to "
    "Context.from_dict(workflow, data) to resume (docs/serialization.md). A server "
    "takes no context: send events to the run's handler instead (docs/server.md)"
)


class SerializedContext:
    """Refused: a saved context is the dict ``ctx.to_dict()`` returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NO_MODEL)
