"""``DBOSRuntime``: runs recorded in DBOS Transact, so that they survive any
process dying and can be resumed, followed and answered from any process of
the application (extra ``anyflow[dbos]``; asyncio only)."""

from __future__ import annotations

try:
    import dbos  # noqa: F401 - imported here so that a missing one names the extra
    import sniffio  # noqa: F401
    import sqlalchemy  # noqa: F401
except ImportError as exc:
    raise ModuleNotFoundError(
        f"anyflow.dbos needs the dbos extra ({exc.name} is missing): pip install 'anyflow[dbos]'",
        name=exc.name,
    ) from exc

from ._runtime import DBOSRuntime

__all__ = ["DBOSRuntime"]
