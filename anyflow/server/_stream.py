"""``GET /events/{handler_id}``: a run's events as a stream, served as a bare
ASGI application.

The route is on the hot path of every client that follows a run, so it skips
what a Starlette response adds per event and per write: each batch of events
that are ready goes out as one ``http.response.body`` message (one write to
the socket) of frames encoded once; a stream that ends with a batch ends in
that same message; and a stream known whole when it is asked for (a finished
run's events) goes out as one body with its ``Content-Length``, without a
task listening for the client.  Errors before the first byte are raised as
``HTTPException``, which the application's handlers answer as every route's.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..durable import Committed, LiveEvent
from ..errors import StoreUnavailableError
from ..events import WorkflowFailedEvent
from ._envelope import _class_names, envelope
from ._event_batches import Replay
from ._http import DISCONNECT_AT_END
from ._refusals import NotFound
from ._routes import MAX_SEQUENCE, _flag, _handler_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Receive, Scope, Send

    from ..durable import LiveEventFeed
    from ._server import WorkflowServer

__all__ = ["EventStream"]

log = logging.getLogger("anyflow.server")

_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
_NDJSON = (b"content-type", b"application/x-ndjson")


class EventStream:
    """The ASGI application of ``GET /events/{handler_id}`` (see the module)."""

    def __init__(self, server: WorkflowServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler_id = _handler_id(Request(scope))
        # The query and the one header are read from the scope: Starlette's
        # QueryParams and Headers cost as much as the rest of a replay's request.
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        sse = _flag(params, "sse", True)
        qualified = _flag(params, "include_qualified_name", True)
        _flag(params, "include_internal", False)  # validated; nothing internal is recorded
        raw = params.get("after_sequence", "now").strip()
        if sse:
            last = _last_event_id(scope)
            if last.lstrip("-").isdigit():
                raw = last
        if raw.lower() == "now":
            after: int | None = None
        else:
            try:
                after = int(raw)
            except ValueError:
                # from None: the HTTP answer carries the whole message
                raise HTTPException(
                    400,
                    f"after_sequence must be an integer (-1: from the start) or now, not {raw!r}",
                ) from None
            if after < -1:
                raise HTTPException(400, "after_sequence must be -1 or more")
            if after > MAX_SEQUENCE:  # no store can hold it (SQLite's integers are 64-bit)
                raise HTTPException(400, f"after_sequence must be at most {MAX_SEQUENCE}")
        now = after is None
        try:
            batches, after = await self.server._book().stream(handler_id, after)
        except NotFound as exc:
            # from None: the HTTP answer carries the whole message
            raise HTTPException(404, str(exc)) from None
        if batches is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [*_HEADERS, _SSE if sse else _NDJSON]
        frames = _Frames(sse=sse, qualified=qualified)
        if isinstance(batches, Replay):
            # Everything is here already: one body, its length known.
            body = frames.encode(await batches.next_batch())
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        # A stream from now says where now is at once, as an id-only frame: a
        # client that reconnects before any other id (an EventSource's
        # Last-Event-ID) goes on from there, not from a later now.  (A live
        # feed from now gives that position first, as a Committed.)
        start = f"id: {after}\n\n".encode() if now and sse and after is not None else b""
        await self._follow(
            scope, receive, send, batches, frames, headers, (handler_id, after), start
        )

    async def _follow(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        batches: LiveEventFeed | None,
        frames: _Frames,
        headers: list[tuple[bytes, bytes]],
        cursor: tuple[str, int | None],
        start: bytes = b"",
    ) -> None:
        """Send the batches as they come, until the last one, the client
        leaves or the server shuts down; a heartbeat comment whenever nothing
        came for ``heartbeat`` seconds (SSE only).

        A store that fails while the events are read (``StoreUnavailableError``)
        does not end the stream: the failure is noted (``/health`` says so),
        and every ``store_retry`` seconds the stream is opened again after the
        last recorded position it sent, until the store answers.  (Events sent
        live since that position may so come again, recorded.)  A stream
        opened for what comes from now on goes on from the position now had
        when it opened (``cursor``, or the one the live feed gave first), not
        from a later now: what was recorded meanwhile comes."""
        server = self.server
        heartbeat = server.heartbeat if frames.sse else math.inf
        gone = ended = False
        handler_id, recorded = cursor  # the last recorded position sent (None: now, not yet known)
        last_sent = anyio.current_time()
        # A server that answers the waiting receive() once the response ended
        # lets the watcher end by itself: half the cost of cancelling it.
        wakes = DISCONNECT_AT_END in (scope.get("extensions") or ())

        async def watch(done: anyio.CancelScope) -> None:
            # The client's leaving is an http.disconnect, which servers send
            # whether or not a write failed (hypercorn on asyncio does not
            # raise from send once the client has gone).
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not ended:
                gone = True
                done.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, tg.cancel_scope)
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                if start:
                    await send({"type": "http.response.body", "body": start, "more_body": True})
                while True:
                    batch = failed = None
                    with server._until_shutdown(heartbeat):
                        try:
                            if batches is None:  # opened again after a store failure
                                batches, recorded = await server._book().stream(
                                    handler_id, recorded
                                )
                                if batches is None:  # finished, nothing after: the end
                                    batch = []
                            if batches is not None:
                                batch = await batches.next_batch()
                        except StoreUnavailableError as exc:
                            failed = exc
                    if failed is not None:
                        server._book().store_failed(failed)
                        batches = None
                        with server._until_shutdown(server.store_retry):
                            await anyio.sleep_forever()
                        if server._closing or gone:
                            break
                        if anyio.current_time() - last_sent < heartbeat:
                            continue
                    if batch is None:
                        if server._closing:
                            break
                        body = b": heartbeat\n\n"
                    else:
                        body = frames.encode(batch)
                        ended = not batch or bool(getattr(batches, "done", False))
                        for item in batch:
                            if type(item) is not LiveEvent:
                                recorded = item.seq
                    if gone:
                        break
                    await send({"type": "http.response.body", "body": body, "more_body": not ended})
                    last_sent = anyio.current_time()
                    if ended:
                        break
                if not ended and not gone:
                    ended = True
                    await send({"type": "http.response.body", "body": b""})
                if not wakes:
                    tg.cancel_scope.cancel()
        except OSError:
            gone = True  # a server that says the client left this way (ASGI 2.4)
        if gone and not ended:
            log.debug("%s: the client left the event stream", scope.get("path"))


def _last_event_id(scope: Scope) -> str:
    """The request's first ``Last-Event-ID`` header, stripped ("" if none)."""
    value: bytes
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            return value.decode("latin-1").strip()
    return ""


class _Frames:
    """Encodes batches of stream items into the stream's bytes.

    A recorded event's SSE frame carries its sequence number as ``id``; an
    event not yet recorded (its step's tick batch has not committed) comes
    without one, and a frame with only ``id: N`` (no data: EventSource
    dispatches nothing) says once that the events up to ``N`` are recorded.
    A client's ``Last-Event-ID`` is so always a recorded position, and a
    reconnection replays the recorded stream from there.  NDJSON has a line
    per event and no ids.
    """

    __slots__ = ("qualified", "sse")

    def __init__(self, *, sse: bool, qualified: bool) -> None:
        self.sse = sse
        self.qualified = qualified

    def encode(self, batch: list[Any]) -> bytes:
        parts = []
        sse = self.sse
        for item in batch:
            kind = type(item)
            if kind is Committed:
                if sse:
                    parts.append(f"id: {item.seq}\n\n")
                continue
            payload = self.envelope(item.event, item.encoded)
            if not sse:
                parts.append(f"{payload}\n")
            elif kind is LiveEvent:
                parts.append(f"data: {payload}\n\n")
            else:
                parts.append(f"id: {item.seq}\ndata: {payload}\n\n")
        return "".join(parts).encode()

    def envelope(self, event: Any, encoded: Any) -> str:
        """The event's envelope as JSON text: its class's part is written once
        per class, its value is the journal's encoding of it."""
        if encoded is None or isinstance(event, WorkflowFailedEvent):
            data = envelope(event, encoded)
            if not self.qualified:
                data["qualified_name"] = None
            return _COMPACT(data)
        value = encoded["fields"]
        if "_extra" in value:  # the free fields of an open event, flat
            value = dict(value)
            value.update(value.pop("_extra") or {})
        head, tail = _parts(type(event), self.qualified)
        return f"{head}{_COMPACT(value)}{tail}"


def _compact() -> Callable[[Any], str]:
    """JSON text without spaces, from json's C encoder made once: an event's
    value is a few fields, and ``JSONEncoder.encode`` makes an encoder per
    call, which is most of its cost for them (2.9 -> 0.7 us).  No check for
    cycles: what it encodes is JSON-safe already (the journal's encoding).
    ``JSONEncoder.encode`` where json has no C encoder."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    chunks = make(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    return lambda value: "".join(chunks(value, 0))


_COMPACT = _compact()

_PARTS: dict[tuple[type, bool], tuple[str, str]] = {}


def _parts(cls: type, qualified: bool) -> tuple[str, str]:
    """The JSON text of an envelope of ``cls`` before and after its value."""
    parts = _PARTS.get((cls, qualified))
    if parts is None:
        if len(_PARTS) >= 2048:  # classes made on the fly: keep it bounded
            _PARTS.clear()
        name, bases, qualified_name = _class_names(cls)
        head = _COMPACT({"type": name})[:-1] + ',"value":'
        tail = {
            "types": list(bases) or None,
            "qualified_name": qualified_name if qualified else None,
        }
        parts = _PARTS[cls, qualified] = (head, "," + _COMPACT(tail)[1:])
    return parts
