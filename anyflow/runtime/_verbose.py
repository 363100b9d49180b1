"""``Workflow(verbose=True)``: a line per step attempt as it starts and ends,
and the stop event a step returns (``[result] StopEvent(...)``).

An adapter decorator over the ``step_call`` hook, so a run that is not verbose
pays nothing.  The lines go to the ``anyflow.verbose`` logger when it is
enabled (at INFO or DEBUG), else to standard output, the way programs written
for llama-index-workflows expect to see them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..events import StopEvent
from ._adapters import InternalRunAdapterDecorator

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..events import Event

__all__ = ["VerboseAdapter"]

log = logging.getLogger("anyflow.verbose")


def _output() -> Callable[[str], None]:
    if log.isEnabledFor(logging.INFO):
        return log.info
    return print


class VerboseAdapter(InternalRunAdapterDecorator):
    """Prints each step attempt's start and end around the inner adapter's ``step_call``."""

    __slots__ = ()

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        out = _output()
        prefix = f"[{step}:{worker_id}]"
        retry = f" (attempt {attempt})" if attempt > 1 else ""
        out(f"{prefix} started from {type(event).__name__}{retry}")
        try:
            result = await self.inner.step_call(step, worker_id, attempt, event, call)
        except Exception as exc:
            out(f"{prefix} failed with {type(exc).__name__}: {exc}")
            raise
        if result is None:
            out(f"{prefix} complete with no result")
        else:
            out(f"{prefix} complete with {type(result).__name__}")
            if isinstance(result, StopEvent):
                out(f"[result] {result!r}")
        return result
