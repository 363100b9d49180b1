"""llama-index-workflows' path ``workflows.context.context_types``, for imports
that port by a change of names.

Its ``SerializedContext`` is the pydantic model of a saved context; anyflow's
saved context is the plain dict ``handler.ctx.to_dict()`` returns, read back
by ``Context.from_dict(workflow, data)``.  So the name imports, and building
one fails at once, saying what to write instead.

``CURRENT_SERIALIZED_VERSION`` is the ``"version"`` that ``ctx.to_dict()``
writes, anyflow's own (its saved contexts are not the incumbent's).
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._saved import FORMAT_VERSION

__all__ = ["CURRENT_SERIALIZED_VERSION", "SerializedContext"]

CURRENT_SERIALIZED_VERSION = FORMAT_VERSION
"""The format version ``ctx.to_dict()`` writes and ``Context.from_dict`` reads."""

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
