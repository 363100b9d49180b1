"""The run context and its phases (see ``_context``)."""

from __future__ import annotations

from ._context import Context as Context
from ._context import ExternalContext as ExternalContext
from ._context import InternalContext as InternalContext
from ._context import PreContext as PreContext
from ._pending import PendingWait as PendingWait
from ._store import StateStore as StateStore
from .serializers import BaseSerializer as BaseSerializer
from .serializers import JsonSerializer as JsonSerializer
from .serializers import PickleSerializer as PickleSerializer

__all__ = [
    "BaseSerializer",
    "Context",
    "ExternalContext",
    "InternalContext",
    "JsonSerializer",
    "PendingWait",
    "PickleSerializer",
    "PreContext",
    "StateStore",
]
