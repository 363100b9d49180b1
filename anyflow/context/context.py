"""``Context`` under llama-index-workflows' module path for it
(``workflows.context.context``), so imports written for it work unchanged."""

from __future__ import annotations

from ._context import Context as Context

__all__ = ["Context"]
