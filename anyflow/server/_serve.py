"""``WorkflowServer.serve()``: the socket, the lifespan, the signals, and
anyflow's own HTTP/1.1 server (``_http``) between them, on whichever backend
is running.

The listening socket is bound here, before anything else starts, so that
``port=0`` gets a free port whose URL the caller learns at once, and a
connection made before the server is ready (its runs resumed) waits in the
socket's backlog instead of being refused.  The backlog is 1024: a burst of
clients connecting at once overflowed hypercorn's 100 (the kernel then drops
their connections' first packets, and they retry a second or more later).

The application's lifespan (Starlette's, which the ASGI lifespan protocol
would run) is entered directly: the server's runs resume before the first
request is served, and stop once the last connection has closed.  A failure
to start them (a store that cannot be read) comes out of ``serve()`` as
itself, not as an ASGI lifespan message.
"""

from __future__ import annotations

import logging
import signal
import socket
from typing import TYPE_CHECKING

import anyio
import sniffio

try:
    import h11  # noqa: F401 - imported here so that a missing one names the extra
except ImportError as exc:
    raise ModuleNotFoundError(
        f"serving needs the server extra ({exc.name} is missing): pip install 'anyflow[server]'",
        name=exc.name,
    ) from exc

from ._http import Limits, serve_http

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._server import WorkflowServer

__all__ = ["serve"]

log = logging.getLogger("anyflow.server")

BACKLOG = 1024
"""Connections that may wait to be accepted."""

LIMITS = Limits()
"""Idle keep-alive 75 s, a request head whole within 10 s and 64 KiB."""


def _listen(host: str, port: int) -> tuple[socket.socket, str]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{bound}"


async def serve(
    server: WorkflowServer,
    host: str,
    port: int,
    *,
    stop: anyio.Event,
    handle_signals: bool,
    graceful_timeout: float,
    task_status: TaskStatus[str],
    limits: Limits = LIMITS,
) -> None:
    sock, url = _listen(host, port)
    try:
        log.info("serving on %s (%s)", url, sniffio.current_async_library())
        task_status.started(url)
        app = server.app
        async with app.router.lifespan_context(app), anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(_on_signal, server)
            await serve_http(app, sock, stop=stop, limits=limits, graceful_timeout=graceful_timeout)
            tg.cancel_scope.cancel()
    finally:
        sock.close()  # if serve_http never took it


async def _on_signal(server: WorkflowServer) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s received", signal.Signals(signum).name)
            server.stop()
            return
