"""Accepting connections on a listening socket, and shutting down.

Shutdown (``stop`` set) goes in three steps, so that no client loses an
answer it was promised and nothing outlives ``serve_http``:

1. the listening socket is closed: new connections are refused (those still
   in its backlog are dropped by the kernel);
2. idle keep-alive connections are closed at once, and every other one after
   the response in hand (sent with ``Connection: close``);
3. after ``graceful_timeout`` seconds, what is left is cancelled.

Requests that could wait long (event streams, blocking runs) are the
application's to end at shutdown (``WorkflowServer.close_streams``), so a
grace period of seconds is enough.
"""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ._connection import Connection, Limits

if TYPE_CHECKING:
    import socket

    from starlette.types import ASGIApp

__all__ = ["serve_http"]

log = logging.getLogger("anyflow.server")

_RESOURCE_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""Accept errors that pass once connections close: wait a little, accept again."""


async def serve_http(
    app: ASGIApp,
    sock: socket.socket,
    *,
    stop: anyio.Event,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    graceful_timeout: float = 2.0,
) -> None:
    """Serve ``app`` on the listening ``sock`` (which it takes and closes)
    until ``stop`` is set and the connections have closed (see the module)."""
    listener = await anyio.abc.SocketListener.from_socket(sock)
    live: set[Connection] = set()
    drained = anyio.Event()
    shutting_down = False

    async def handle(stream: anyio.abc.SocketStream) -> None:
        connection = Connection(app, stream, limits)
        live.add(connection)
        try:
            await connection.run()
        finally:
            live.discard(connection)
            if shutting_down and not live:
                drained.set()

    async def accept(connections: anyio.abc.TaskGroup) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _RESOURCE_SHORTAGE:
                    raise
                log.warning("cannot accept a connection now: %s", exc)
                await anyio.sleep(0.1)
                continue
            connections.start_soon(handle, stream)

    async def reap() -> None:
        # Closes the connections that waited too long for a request (or the
        # rest of its head): a scan every tenth of the shortest limit (at most
        # a second) instead of a timer per request.
        tick = min(1.0, limits.keep_alive / 10, limits.head_timeout / 10)
        while True:
            await anyio.sleep(tick)
            now = anyio.current_time()
            for connection in list(live):
                if connection.deadline <= now:
                    connection.expire()

    async with anyio.create_task_group() as connections:
        connections.start_soon(reap)
        async with listener, anyio.create_task_group() as accepting:
            accepting.start_soon(accept, connections)
            await stop.wait()
            log.info("shutting down")
            accepting.cancel_scope.cancel()
        shutting_down = True
        for connection in list(live):
            connection.close_when_idle()
        if live:
            with anyio.move_on_after(graceful_timeout):
                await drained.wait()
        connections.cancel_scope.cancel()  # the reaper, and what is left
