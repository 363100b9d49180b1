"""``EventStream``: a run's events over server-sent events, reconnecting.

The stream is ``id: <sequence>`` and ``data: <envelope>`` frames with ``:``
heartbeat comments between them, read line by line by a sans-IO decoder
(``_SseDecoder``). It ends at the run's terminal event (one typed
``StopEvent``) or at a 204 (the run had finished, with nothing after the
cursor). Anything else that ends it (a dropped connection, a server that
shuts down) is followed by a reconnection from the last sequence received,
so the consumer sees every event once.

Under trio an httpx body left half-read leaves suspended async generators
that warn when collected, so a stream is closed by draining its lines under a
cancelled scope: the cancellation unwinds httpx's generator chain whole.

The requests themselves are built by the ``WorkflowClient`` that made the
stream (its ``_request``, its ``httpx`` client), so headers, token and
timeouts are the client's.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Literal

import anyio
import attrs
import httpx

from ._errors import ConnectionFailedError, WorkflowClientError, error_for
from ._models import EventEnvelope

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from typing_extensions import Self

    from ._client import WorkflowClient

__all__ = ["EventStream"]


@attrs.define
class _SseFrame:
    id: str | None = None
    data: list[str] = attrs.field(factory=list)


class _SseDecoder:
    """Server-sent events from lines (sans-IO): ``line()`` returns a complete
    frame at the blank line that ends it."""

    def __init__(self) -> None:
        self._frame = _SseFrame()
        self.recorded: str | None = None
        """The id of the last frame with an id and no data: the server says
        that the events up to it (sent before without an id) are recorded."""

    def line(self, line: str) -> _SseFrame | None:
        if not line:
            frame, self._frame = self._frame, _SseFrame()
            if not frame.data and frame.id is not None:
                self.recorded = frame.id
            return frame if frame.data else None
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._frame.id = value
        elif name == "data":
            self._frame.data.append(value)
        return None


class EventStream:
    """The events of one run, as an async iterator of ``EventEnvelope``s
    (from ``WorkflowClient.stream_events``); an async context manager that
    closes its connection."""

    def __init__(
        self,
        client: WorkflowClient,
        handler_id: str,
        after: int | Literal["now"],
        *,
        max_reconnects: int,
        reconnect_delay: float,
        idle_timeout: float | None,
    ) -> None:
        if after != "now" and (not isinstance(after, int) or after < -1):
            raise ValueError(f"after must be -1 or more, or 'now', not {after!r}")
        self.handler_id = handler_id
        self._client = client
        self._last: int | Literal["now"] = after
        self._max_reconnects = max_reconnects
        self._delay = reconnect_delay
        self._idle_timeout = idle_timeout
        self._failures = 0
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._decoder = _SseDecoder()
        self._ended = False
        """The run's last event was given: the stream ends at the next step."""
        self._done = False

    @property
    def last_sequence(self) -> int | Literal["now"]:
        """The sequence of the last event given, or the ``after`` it started from:
        ``stream_events(id, after=stream.last_sequence)`` goes on from here."""
        return self._last

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventEnvelope:
        while not self._done:
            if self._ended:
                await self._finish()
                break
            if self._lines is None:
                await self._connect()
                continue
            try:
                line = await self._lines.__anext__()
            except StopAsyncIteration:
                await self._dropped(None)  # closed before the run's last event
                continue
            except httpx.TransportError as exc:
                await self._dropped(exc)
                continue
            frame = self._decoder.line(line)
            if frame is None:
                recorded, self._decoder.recorded = self._decoder.recorded, None
                if recorded is not None and recorded.lstrip("-").isdigit():
                    self._last = int(recorded)  # a reconnection goes on from there
                continue
            envelope = self._envelope(frame)
            if envelope.sequence is not None:
                self._last = envelope.sequence
            self._failures = 0
            self._ended = envelope.is_terminal
            return envelope
        raise StopAsyncIteration

    async def _finish(self) -> None:
        """After the run's last event the server ends the response: read up to
        that end (so the connection can serve another request), then close."""
        if self._lines is not None:
            with anyio.move_on_after(self._idle_timeout):
                try:
                    while True:
                        await self._lines.__anext__()
                except (StopAsyncIteration, httpx.TransportError):
                    pass
        await self.aclose()

    def _envelope(self, frame: _SseFrame) -> EventEnvelope:
        text = "\n".join(frame.data)
        try:
            data = json.loads(text)
        except ValueError as exc:  # its cause says where the text stops being JSON
            raise WorkflowClientError(
                f"the stream sent a frame that is not JSON: {text[:200]!r}"
            ) from exc
        sequence = int(frame.id) if frame.id and frame.id.lstrip("-").isdigit() else None
        return EventEnvelope.from_json(data, sequence)

    async def _connect(self) -> None:
        after = self._last
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if isinstance(after, int) and after >= 0:
            headers["Last-Event-ID"] = str(after)
        request = self._client._request(
            "GET",
            ("events", self.handler_id),
            params={"sse": "true", "after_sequence": str(after)},
            headers=headers,
            wait=True,
            read_timeout=self._idle_timeout,
        )
        try:
            response = await self._client._http.send(request, stream=True)
        except httpx.TransportError as exc:
            await self._dropped(exc)
            return
        if response.status_code == 204:
            await response.aclose()
            self._done = True
        elif not response.is_success:
            await response.aread()
            await response.aclose()
            self._done = True
            raise error_for(response)
        else:
            self._response = response
            self._lines = response.aiter_lines()
            self._decoder = _SseDecoder()  # a frame cut short is sent again

    async def _dropped(self, exc: Exception | None) -> None:
        await self._close_response()
        self._failures += 1
        if self._failures > self._max_reconnects:
            self._done = True
            why = f"{type(exc).__name__}: {exc}" if exc else "the server closed it early"
            raise ConnectionFailedError(
                f"the event stream of handler {self.handler_id!r} failed "
                f"{self._failures} times in a row (last: {why}); it can go on with "
                f"stream_events(..., after={self._last!r})"
            ) from exc
        delay = self._delay * 2 ** (self._failures - 1)
        if delay > 0 and math.isfinite(delay):
            await anyio.sleep(min(delay, 5.0))

    async def _close_response(self) -> None:
        lines, response = self._lines, self._response
        self._lines = self._response = None
        with anyio.CancelScope(shield=True):
            if lines is not None:
                # Unwind httpx's chain of body generators at a read (see the
                # module docstring); lines already received are dropped.
                with anyio.CancelScope() as drain:
                    drain.cancel()
                    try:
                        while True:
                            await lines.__anext__()
                    except (StopAsyncIteration, httpx.HTTPError):
                        pass
            if response is not None:
                await response.aclose()

    async def aclose(self) -> None:
        """Close the connection; the stream gives no more events."""
        self._done = True
        await self._close_response()
