"""``ExternalContext`` under llama-index-workflows' module path for it
(``workflows.context.external_context``), so imports written for it work unchanged."""

from __future__ import annotations

from ._context import ExternalContext as ExternalContext

__all__ = ["ExternalContext"]
