"""``DBOSRuntime``: runs recorded in DBOS Transact, so that they survive any
process dying and can be resumed, followed and answered from any process of
the application (extra ``anyflow[dbos]``; asyncio only)."""

from __future__ import annotations

from ._runtime import DBOSRuntime

__all__ = ["DBOSRuntime"]
