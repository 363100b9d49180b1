"""Optional bearer-token authentication for the API.

The inspector's files, ``/health`` and ``/openapi.json`` stay public (a load
balancer probes health; the page asks for the token and sends it itself);
every other route needs ``Authorization: Bearer <token>`` when a token is set.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BearerAuth"]

_PUBLIC = ("/health", "/openapi.json", "/")


class BearerAuth:
    """ASGI middleware: a 401 for an API request without the server's token."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._expected is None
            or scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"] in _PUBLIC
            or scope["path"].startswith("/static/")
        ):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if secrets.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"detail": "this server needs a token: send Authorization: Bearer <token>"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
