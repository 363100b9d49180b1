"""One HTTP/1.1 connection: its requests one after another, each served by
the ASGI application as an ``http`` scope.

Theory of operation.  ``h11.Connection`` holds the protocol's state and does
every byte of parsing and framing; ``Connection`` feeds it what the socket
gives, and ``Exchange`` (one request and its response) turns its events into
ASGI messages and the application's messages into its events.

Rule 1: the socket is read only when someone waits for bytes: the connection,
for the next request's head; the application's ``receive()``, for the body;
or ``receive()`` once the body is read, for the client's leaving (EOF or a
reset: ``http.disconnect``).  What arrives meanwhile (a pipelined request) is
kept in h11's buffer for the next cycle, up to ``Limits.max_head`` bytes.

Rule 2: a client holds a connection for a bounded time.  Idle, it may keep it
``keep_alive`` seconds; once a request's first bytes are in, its head must be
whole within ``head_timeout`` and no larger than ``max_head`` (h11's
``max_incomplete_event_size``: 431).  The connection only notes when its wait
ends (``deadline``); the listener's reaper closes it past that, and never
while a request is served.  The body's time is the application's to bound
(its ``body_timeout`` answers 408), and so is its size; a body it never
asked for (a 404 answered before the body came) is read and dropped after
the response, up to ``max_head`` bytes within ``head_timeout``, so that the
connection goes on, and one it gave up on closes the connection.  A connection closed
with bytes unread lingers (half-closed, reading) so that its last answer is
not lost to the reset such a close sends.

Rule 3: the response head is held until the first body bytes, so that both
go out in one write (a JSON answer is then one write in all); a response
whose first body bytes are late (an event stream waiting for its first event)
still shows its head as soon as the application waits for the client's
leaving (``receive()`` after the body, what a stream does from the start).

Rule 4: what the client gets wrong is answered, never logged: a request h11
refuses gets h11's status hint (400, 431, ...) and ``Connection: close``.  A
client gone is seen by the application as ``http.disconnect``; writes to it
are dropped instead of raising.  What the application gets wrong is logged
once: a failure before its response started is a 500; after, the connection
is closed, so the client sees a cut body and not a false end.  A failure
after the response ended is the application's own error handler's to log
(Starlette's re-raises what it has answered with a 500).

Rule 5: a ``receive()`` waiting for the client's leaving is answered
``http.disconnect`` as soon as the application's last body message is sent,
as uvicorn, hypercorn and httpx's ASGI transport do: a task that watches for
the client then ends by itself, cheaper than being cancelled.  The scope's
extension ``anyflow.disconnect_at_end`` says so.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio
import anyio.lowlevel
import attrs
import h11
from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    from anyio.abc import SocketStream
    from starlette.types import ASGIApp, Message

__all__ = ["Connection", "Limits"]

log = logging.getLogger("anyflow.server")

READ_SIZE = 64 * 1024
"""Bytes asked of the socket per read."""

_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
_DISCONNECT: Message = {"type": "http.disconnect"}
_LAST_BODY: Message = {"type": "http.request", "body": b"", "more_body": False}
_INTERNAL = "internal server error (the server's log has the details)"
_ASGI = {"version": "3.0", "spec_version": "2.3"}
"""Spec 2.3: ``send()`` to a client gone does not raise (it is dropped), and
the client's leaving is an ``http.disconnect``."""
DISCONNECT_AT_END = "anyflow.disconnect_at_end"
"""The scope's extension that says rule 5 holds: an application may then let
a task waiting for the client's leaving end by itself."""


@attrs.frozen
class Limits:
    """What one client may hold of the server."""

    keep_alive: float = 75.0
    """Seconds an idle connection stays open: longer than clients keep idle
    connections (httpx 5 s, aiohttp 15 s, browsers up to about 60 s), so
    that the client is the one to close it (a server that closes it first
    races a client reusing it, whose request then gets no answer)."""
    head_timeout: float = 10.0
    """Seconds a request's head may take to arrive whole, from its first
    bytes: a client trickling a head in (slowloris) holds a connection no
    longer."""
    max_head: int = 64 * 1024
    """Bytes of a request head (431 above), and of what is read ahead of the
    request being served (the next request's head, pipelined)."""


class Connection:
    """One accepted connection, served until it closes (``run``)."""

    def __init__(self, app: ASGIApp, stream: SocketStream, limits: Limits) -> None:
        self.app = app
        self.stream = stream
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        self.client = _address(stream, SocketAttribute.remote_address)
        self.server = _address(stream, SocketAttribute.local_address)
        self.closing = False
        """Shutting down: the request in hand is served, and then no other."""
        self.gone = False
        """The client left: a read found the end or a write failed."""
        self.deadline = math.inf
        """When the wait for the next request (or the rest of its head) ends:
        the listener's reaper calls ``expire()`` past it (rule 2); infinite
        while a request is served."""
        self._idle = False
        """Waiting for a request of which nothing has come yet."""
        self._scope = anyio.CancelScope()
        """The connection's life: cancelled only while it waits (``expire``,
        ``close_when_idle``), never while a request is served."""
        self._aside: anyio.Event | None = None
        """Set while ``receive()`` writes (``write_aside``)."""

    def close_when_idle(self) -> None:
        """Serve no more requests: close now if idle, else after this response."""
        self.closing = True
        if self._idle:
            self._scope.cancel()

    def expire(self) -> None:
        """Close: waited past ``deadline`` for a request (or its head's end)."""
        if self.deadline < math.inf:
            self._scope.cancel()

    async def run(self) -> None:
        try:
            with self._scope:
                while not self.closing:
                    request = await self._next_request()
                    if request is None or not await Exchange(self, request).serve():
                        break
                    self.h11.start_next_cycle()
                if not self.gone and self.h11.their_state in (h11.SEND_BODY, h11.ERROR):
                    await self._linger()
        finally:
            with anyio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _linger(self) -> None:
        """Half-close, and read what the client still sends for a moment: a
        socket closed with bytes unread sends a reset, which may reach the
        client before the answer it was just sent (a 400, a 431, a 413)."""
        with anyio.move_on_after(self.limits.head_timeout):
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.stream.send_eof()
            while await self.read():
                pass

    async def _next_request(self) -> h11.Request | None:
        """The next request's head, or None when the connection is to close
        (the client closed it, idle too long, a head too slow, shutdown)."""
        # The deadlines are kept by the listener's reaper, not a cancel scope
        # per request (which cost a tenth of a small request's CPU on trio).
        conn = self.h11
        limits = self.limits
        head_started = False
        try:
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    break
                if conn.trailing_data[0]:  # a head has begun
                    self._idle = False
                    if not head_started:
                        head_started = True
                        self.deadline = anyio.current_time() + limits.head_timeout
                else:
                    if self.closing:
                        return None
                    self._idle = True
                    self.deadline = anyio.current_time() + limits.keep_alive
                data = await self.read()
                # Expired as the bytes came: they are dropped with the
                # connection (the scope must not reach the request's serving).
                if self._scope.cancel_called:
                    return None
                conn.receive_data(data)
        except h11.RemoteProtocolError as exc:
            self.deadline, self._idle = math.inf, False
            await self.refuse(exc)
            return None
        finally:
            self.deadline, self._idle = math.inf, False
        if type(event) is h11.Request:
            return event
        return None  # ConnectionClosed: the client is done

    async def read(self) -> bytes:
        """The socket's next bytes; b"" once the client has gone."""
        if self.gone:
            return b""
        try:
            return await self.stream.receive(READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.gone = True
            return b""

    async def write(self, data: bytes) -> None:
        """Send ``data``; dropped once the client has gone (rule 4)."""
        aside = self._aside
        if aside is not None:  # receive() is writing: after it
            await aside.wait()
        await self._send(data)

    async def write_aside(self, data: bytes) -> None:
        """Send ``data`` from ``receive()`` (a 100 Continue, a held head),
        which may run while the application sends: its writes wait for this
        one.  (No lock on every write: only these can overlap another, and
        they never overlap each other, being made by whoever receives.)"""
        self._aside = done = anyio.Event()
        try:
            await self._send(data)
        finally:
            self._aside = None
            done.set()

    async def _send(self, data: bytes) -> None:
        if self.gone:
            return
        try:
            await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self.gone = True

    async def refuse(self, exc: h11.RemoteProtocolError) -> None:
        """Answer a request h11 refused, if it can still be answered (rule 4)."""
        log.debug("refused a request from %s: %s", self.client, exc)
        await self.answer(exc.error_status_hint, f"{exc}")

    async def answer(self, status: int, detail: str) -> None:
        """A whole ``{"detail": ...}`` response of the server's own, closing."""
        conn = self.h11
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = json.dumps({"detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"date", http_date()),
        ]
        data = _head(conn, status, headers)
        # A HEAD request's answer is its head alone (h11 refuses a body).
        with contextlib.suppress(h11.LocalProtocolError):
            data += (conn.send(h11.Data(data=body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
        await self.write(data)


class Exchange:
    """One request and its response: the ASGI scope, ``receive`` and ``send``."""

    __slots__ = (
        "_pending",
        "_waiting",
        "body_asked",
        "body_done",
        "complete",
        "conn",
        "continue_refused",
        "failed",
        "head",
        "is_head",
        "read_ahead",
        "request",
        "scope",
        "started",
    )

    def __init__(self, conn: Connection, request: h11.Request) -> None:
        self.conn = conn
        self.request = request
        target, _, query = request.target.partition(b"?")
        path = target.decode("ascii")  # h11 admits only visible ASCII in a target
        if "%" in path:
            path = unquote(path)
        method = request.method.decode("ascii")
        self.is_head = method == "HEAD"
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": request.http_version.decode("ascii"),
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": target,
            "query_string": query,
            "root_path": "",
            "headers": list(request.headers),
            "client": conn.client,
            "server": conn.server,
            "extensions": {DISCONNECT_AT_END: {}},
        }
        self.head: bytes | None = None
        """The response head, held until the first body bytes (rule 3)."""
        self.started = self.complete = self.body_done = False
        self.failed: h11.RemoteProtocolError | None = None
        self._pending: object = None
        """A body event read ahead of the application's next ``receive()``."""
        self.read_ahead = 0
        self.body_asked = False
        """The application read (or tried to read) the body."""
        self.continue_refused = False
        """Answered while the client waited for a 100 Continue: it may send
        its body or not, so the connection carries no other request."""
        self._waiting: anyio.CancelScope | None = None
        """A ``receive()`` waiting for the client's leaving: the response's
        end wakes it (rule 5)."""

    async def serve(self) -> bool:
        """Run the application on the request; whether the connection may
        carry another."""
        conn = self.conn
        try:
            await conn.app(self.scope, self.receive, self.send)
        except Exception as exc:
            if not (self.complete or conn.gone):
                log.error("%s %s failed", *self._what(), exc_info=exc)
                if not self.started:
                    await conn.answer(500, _INTERNAL)
                return False
            # Answered: the application's own handler logged it; or the client
            # left, and what failed is writing to it (rule 4).
            log.debug("%s %s raised after its response", *self._what(), exc_info=exc)
        if not self.complete:
            if conn.gone:
                return False  # a response to nobody, left off: nothing wrong
            if not self.started:
                log.error("%s %s: the application sent no response", *self._what())
                await conn.answer(500, _INTERNAL)
            else:
                log.error("%s %s: the application left its response unfinished", *self._what())
            return False
        if self.failed is not None:
            return False
        h = conn.h11
        if h.their_state is h11.SEND_BODY and not await self._skip_body():
            return False  # an unread body too large, too slow or malformed: close
        return (
            not conn.gone
            and not conn.closing
            and h.our_state is h11.DONE
            and h.their_state is h11.DONE
        )

    def _what(self) -> tuple[str, str]:
        return self.scope["method"], self.scope["path"]

    async def _skip_body(self) -> bool:
        """Read and drop the rest of a body the application never asked for,
        up to ``max_head`` bytes within ``head_timeout``; whether it ended.  A
        client sends a small body after its head (httpx: in another write),
        and a 404 answered before it came must not close the connection the
        client is about to reuse (its next request would get no answer)."""
        conn = self.conn
        if self.continue_refused or self.body_asked:
            return False  # or a body the application gave up on (a 408, a 413)
        budget = conn.limits.max_head
        with anyio.move_on_after(conn.limits.head_timeout):
            while not self._drain():
                if budget <= 0 or self.failed is not None:
                    return False  # too large, or malformed
                data = await conn.read()
                if not data:
                    return False
                budget -= len(data)
                conn.h11.receive_data(data)
            return True
        return False

    def _drain(self) -> bool:
        """Skip an unread body already received whole; False if more is to come."""
        h = self.conn.h11
        if self._pending is not None:
            if type(self._pending) is h11.EndOfMessage:
                return True
            self._pending = None
        try:
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    return False
                if type(event) is h11.EndOfMessage:
                    return True
        except h11.RemoteProtocolError as exc:
            self.failed = exc
            return False

    # receive()

    async def receive(self) -> Message:
        if not self.body_done:
            return await self._body()
        if self.complete or self.conn.gone:
            return _DISCONNECT
        await self._until_gone()
        return _DISCONNECT

    async def _body(self) -> Message:
        self.body_asked = True
        conn = self.conn
        h = conn.h11
        event: object = self._pending
        self._pending = None
        try:
            if event is None:
                if h.they_are_waiting_for_100_continue:
                    await conn.write_aside(_continue(h))
                event = h.next_event()
                while event is h11.NEED_DATA:
                    h.receive_data(await conn.read())
                    event = h.next_event()
            if type(event) is h11.Data:
                # Whatever follows at once goes with it (a body and its end,
                # received together: one message instead of two).
                after = h.next_event()
                if type(after) is h11.EndOfMessage:
                    self.body_done = True
                    return {"type": "http.request", "body": event.data, "more_body": False}
                if after is not h11.NEED_DATA:
                    self._pending = after
                return {"type": "http.request", "body": event.data, "more_body": True}
        except h11.RemoteProtocolError as exc:
            # A body cut short (the client left) or malformed (bad chunks).
            self.failed = exc
            self.body_done = True
            return _DISCONNECT
        self.body_done = True  # EndOfMessage
        return _LAST_BODY

    async def _until_gone(self) -> None:
        """Wait for the client to leave (rule 1), showing a held head first (rule 3)."""
        conn = self.conn
        if self.head is not None:
            await anyio.lowlevel.checkpoint()  # the first body may be on its way
            if self.head is not None:
                head, self.head = self.head, None
                await conn.write_aside(head)
        h = conn.h11
        try:
            with anyio.CancelScope() as self._waiting:
                while not self.complete:
                    if self.read_ahead > conn.limits.max_head:
                        await anyio.sleep_forever()  # read no more until this response ends
                    data = await conn.read()
                    if not data:
                        return
                    self.read_ahead += len(data)
                    h.receive_data(data)  # a pipelined request: kept for the next cycle
        finally:
            self._waiting = None

    # send()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        h = self.conn.h11
        if kind == "http.response.body":
            if not self.started or self.complete:
                when = "after the end" if self.complete else "before the start"
                raise RuntimeError(f"http.response.body {when}")
            body = message.get("body", b"")
            data = self.head or b""
            self.head = None
            if body and not self.is_head:
                data += h.send(h11.Data(data=body)) or b""
            if not message.get("more_body", False):
                self.complete = True
                data += h.send(h11.EndOfMessage()) or b""
                if self._waiting is not None:
                    self._waiting.cancel()
            if data:
                await self.conn.write(data)
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            self.continue_refused = h.they_are_waiting_for_100_continue
            headers = [*message.get("headers", ()), (b"date", http_date())]
            if self.conn.closing:
                headers.append((b"connection", b"close"))
            self.head = _head(h, status, headers)
            self.started = True
        else:
            raise RuntimeError(f"an HTTP response takes no {kind!r} message")


def _continue(h: h11.Connection) -> bytes:
    return h.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")) or b""


def _head(h: h11.Connection, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    response = h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
    return h.send(response) or b""


def _address(stream: SocketStream, attribute: Any) -> tuple[str, int] | None:
    try:
        address = stream.extra(attribute)
    except anyio.TypedAttributeLookupError:
        return None
    if isinstance(address, tuple):
        return address[0], address[1]
    return None  # a UNIX socket: no host and port


class _Date:
    second = 0
    value = b""


def http_date() -> bytes:
    """The ``Date`` header's value (an origin server with a clock sends one),
    formatted once a second."""
    now = int(time.time())
    if now != _Date.second:
        _Date.value = email.utils.formatdate(now, usegmt=True).encode()
        _Date.second = now
    return _Date.value
