"""``handler.stream_events()``'s iterator, which also drives a run its caller drives.

For a run no runtime hosts (``handler.py``'s rule 3), each ``__anext__``
drives the run until the stream has an event to hand over and the run is at
rest, then hands the event over with nothing of the run running. It reads
the handler's drive state (``_driven``, ``_driving``) and asks the handler to
drive (``_drive``), so that one task drives at a time however the run is
waited on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Generator

    from .handler import WorkflowHandler

__all__ = ["HandlerStream"]


class HandlerStream:
    """``handler.stream_events()``: the run's stream, and, for a run its caller
    drives, the drive.  A plain iterator rather than an async generator, so a
    consumer may ``break`` out of its loop without leaving a generator to be
    finalized."""

    __slots__ = ("_expose_internal", "_handler", "_inner")

    def __init__(
        self, handler: WorkflowHandler, inner: AsyncIterator[Any], expose_internal: bool
    ) -> None:
        self._handler = handler
        self._inner = inner
        self._expose_internal = expose_internal

    def __aiter__(self) -> HandlerStream:
        return self

    async def __anext__(self) -> Any:
        handler = self._handler
        if handler._driven is not None and not handler._driving:
            adapter = handler._adapter
            assert adapter is not None
            ready = getattr(adapter, "ready", None)
            while (
                adapter.outcome is None
                and not handler._driving
                and not (ready is not None and ready(self._expose_internal))
            ):
                await handler._drive(pause_when_idle=True)
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            handler._streamed = True
            raise

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError(
            "handler.stream_events() is an async iterator, not an awaitable: write "
            "`async for ev in handler.stream_events():`, and `await handler` for the result"
        )
