"""The server's ASGI application around its routes, and how errors answer.

Starlette's application, with one thing more: when no lifespan holds the
server's runtime open (an application embedded in ``httpx.ASGITransport``,
which sends no lifespan events), each HTTP request is served inside a
``Session`` of the server (``WorkflowServer._session``).  An
``HTTPException`` answers ``{"detail": message}`` with its status; any other
exception is a bug, logged with its traceback and answered with a 500 that
shows the client none of it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from ._server import WorkflowServer

__all__ = ["Application", "Session", "client_gone", "http_error", "internal_error"]

log = logging.getLogger("anyflow.server")


@attrs.define
class Session:
    """Requests served together without a lifespan (see ``WorkflowServer._session``)."""

    users: int = 1
    closing: bool = False
    closed: anyio.Event = attrs.field(factory=anyio.Event)


class Application(Starlette):
    """The server's ASGI application: Starlette's, with each HTTP request
    served inside the server's runtime when no lifespan holds it open."""

    def __init__(self, server: WorkflowServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = self._server
        # A runtime given as runtime= is entered once, by the lifespan: a 503 without it.
        if scope["type"] != "http" or server._lifespan_open or server.runtime is not None:
            await super().__call__(scope, receive, send)
            return
        async with server._session():
            await super().__call__(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 204:
        return Response(status_code=204)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def client_gone(request: Request, exc: Exception) -> Response:
    # A client that leaves before its request body has come whole is no
    # failure of the server's: nothing to log, and an answer nobody reads.
    log.debug("%s %s: the client left before its body came whole", request.method, request.url.path)
    return Response(status_code=400, headers={"Connection": "close"})


async def internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal server error (the server's log has the details)"}, status_code=500
    )
