"""Serving the application with hypercorn, on whichever backend is running.

Hypercorn has one entry point per event loop library; this is the one place
that picks between them.  The listening socket is bound here, before
hypercorn starts, so ``port=0`` gets a free port whose URL the caller learns
at once, and a connection made before the server is ready waits in the
socket's backlog instead of being refused.

Two of hypercorn's defaults do not suit a server that many clients follow at
once, so ``config`` sets them:

* ``backlog``: hypercorn listens again on the socket it is given, with its
  own backlog (100), which a burst of clients connecting at once overflows
  (the kernel then drops their connections' first packets, and they retry a
  second or more later).  It gets the backlog bound here.
* ``keep_alive_timeout``: hypercorn closes an idle connection after 5 s,
  the very time httpx keeps one in its pool (``keepalive_expiry``), and so
  do other clients.  A client that reuses a connection just before its own
  expiry may send its request as the server closes it, and gets "Server
  disconnected" with no answer: a race that a loaded machine makes likely.
  The server keeps idle connections longer than clients do
  (``KEEP_ALIVE``), so that the client is the one that drops them.
"""

from __future__ import annotations

import logging
import signal
import socket
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._server import WorkflowServer

__all__ = ["serve"]

log = logging.getLogger("anyflow.server")

BACKLOG = 1024
"""Connections that may wait to be accepted."""

KEEP_ALIVE = 75.0
"""Seconds an idle connection stays open: longer than clients keep idle
connections (httpx 5 s, aiohttp 15 s, browsers up to about 60 s)."""


def _listen(host: str, port: int) -> tuple[socket.socket, str]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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
) -> None:
    try:
        from hypercorn.config import Config
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"serving needs the server extra ({exc.name} is missing): "
            "pip install 'anyflow[server]'",
            name=exc.name,
        ) from exc

    sock, url = _listen(host, port)
    config = hypercorn_config(Config(), sock.detach(), graceful_timeout=graceful_timeout)
    library = sniffio.current_async_library()
    hypercorn_serve: Any
    if library == "trio":
        from hypercorn.trio import serve as hypercorn_serve
    else:
        from hypercorn.asyncio import serve as hypercorn_serve

    async def shutdown_trigger() -> None:
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(_on_signal, server)
            await stop.wait()
            tg.cancel_scope.cancel()
        log.info("shutting down")

    log.info("serving on %s (%s)", url, library)
    task_status.started(url)
    await hypercorn_serve(server.app, config, shutdown_trigger=shutdown_trigger)


def hypercorn_config(config: Any, fd: int, *, graceful_timeout: float) -> Any:
    """``config`` (a ``hypercorn.config.Config``) set to serve on the socket
    ``fd`` (see the module for the backlog and keep-alive)."""
    config.bind = [f"fd://{fd}"]  # hypercorn owns the socket from here
    config.backlog = BACKLOG
    config.keep_alive_timeout = KEEP_ALIVE
    config.graceful_timeout = graceful_timeout
    # At shutdown, hypercorn on trio holds a connection whose stream we ended
    # until graceful_timeout (asyncio closes it at once): the requests that
    # could need longer (streams, blocking runs) end themselves at shutdown, so
    # the default is short.
    config.accesslog = None
    config.errorlog = log
    return config


async def _on_signal(server: WorkflowServer) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s received", signal.Signals(signum).name)
            server.stop()
            return
