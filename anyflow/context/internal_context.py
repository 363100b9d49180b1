"""``InternalContext`` under llama-index-workflows' module path for it
(``workflows.context.internal_context``), so imports written for it work unchanged."""

from __future__ import annotations

from ._context import InternalContext as InternalContext

__all__ = ["InternalContext"]
