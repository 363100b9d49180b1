"""``PreContext`` under llama-index-workflows' module path for it
(``workflows.context.pre_context``), so imports written for it work unchanged."""

from __future__ import annotations

from ._context import PreContext as PreContext

__all__ = ["PreContext"]
