"""Serving the application with hypercorn, on whichever backend is running.

Hypercorn has one entry point per event loop library; this is the one place
that picks between them.  The listening socket is bound here, before
hypercorn starts, so ``port=0`` gets a free port whose URL the caller learns
at once, and a connection made before the server is ready waits in the
socket's backlog instead of being refused.
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


def _listen(host: str, port: int) -> tuple[socket.socket, str]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
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
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
    config.graceful_timeout = graceful_timeout
    # At shutdown, hypercorn on trio holds a connection whose stream we ended
    # until graceful_timeout (asyncio closes it at once): the requests that
    # could need longer (streams, blocking runs) end themselves at shutdown, so
    # the default is short.
    config.accesslog = None
    config.errorlog = log
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


async def _on_signal(server: WorkflowServer) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("%s received", signal.Signals(signum).name)
            server.stop()
            return
