"""What a web page must not be able to make the server do.

A server without a token on a developer's machine is still reachable from
every page that developer's browser opens.  Three browser behaviours make that
dangerous, and this middleware closes each:

- **Cross-site requests.**  A page may POST to any address, and a ``text/plain``
  or form-encoded POST needs no CORS preflight, so it reaches the route even
  though the page cannot read the answer.  Rule 1: a state-changing request
  (any method but GET, HEAD and OPTIONS) whose ``Origin`` is present and is
  neither the server's own origin nor one of ``cors_origins`` is a 403.
  Rule 2: a request with a body must say it is JSON (``application/json`` or
  a ``+json`` type), else 415: a browser sends those only after a preflight,
  which the CORS policy answers.
- **DNS rebinding.**  A page whose name is made to resolve to 127.0.0.1 reads
  the server as its own origin, so the same-origin policy does not stop it;
  its requests still carry its own name in ``Host``.  Rule 3: only allowed
  ``Host`` names are served (400 otherwise): the loopback names, the address
  the server listens on, and ``allowed_hosts`` (``"*"`` allows any).  A request
  without a ``Host`` header (not one a browser sends) passes, and so does the
  conventional name of an in-process test client (``test``, ``testserver``:
  ``httpx.ASGITransport`` with ``base_url="http://test"``) when the ASGI scope
  says the request reached no socket (see ``in_process_host``).
- **Framing and sniffing of the inspector page.**  Rule 4: the page and its
  files are sent with a Content-Security-Policy that allows only the server's
  own scripts, styles and requests, ``X-Frame-Options: DENY`` and
  ``X-Content-Type-Options: nosniff``.

Starlette's ``TrustedHostMiddleware`` would cover rule 3 alone, but it reads an
IPv6 ``Host`` (``[::1]:8080``) wrongly, answers in plain text rather than the
API's ``{"detail": ...}``, and takes its list once, while the address the
server listens on is only known when it starts serving.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["IN_PROCESS_NAMES", "LOOPBACK_NAMES", "HostPolicy", "RequestGuard", "in_process_host"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""Host names that always reach this machine only."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
]


def host_name(value: str) -> str:
    """The name part of a ``Host`` header or a listen address, lower case,
    without port, brackets or a trailing dot (``[::1]:8080`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[1:end] if end > 0 else value[1:]
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    else:
        name = value  # a bare name, or a bare IPv6 address
    return name.rstrip(".")


class HostPolicy:
    """The ``Host`` names a server answers to; it learns its listen address
    when it starts serving."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        hosts = [h.strip() for h in allowed_hosts]
        for host in hosts:
            if not host or "/" in host:
                raise ValueError(
                    f"allowed_hosts takes host names (example.com, 10.0.0.5) or '*', not {host!r}"
                )
        self.any = "*" in hosts
        self.names = set(LOOPBACK_NAMES) | {host_name(h) for h in hosts if h != "*"}

    def listen_on(self, address: str) -> None:
        """Allow the address the server listens on, unless it is a wildcard
        (0.0.0.0, ::), which names no host a client would use."""
        name = host_name(address)
        if name not in ("", "0.0.0.0", "::"):
            self.names.add(name)

    def allows(self, host: str) -> bool:
        return self.any or host_name(host) in self.names


IN_PROCESS_NAMES = frozenset({"test", "testserver"})
"""Names in-process test clients give the application (httpx's and Starlette's)."""


def in_process_host(host: str, scope: Scope) -> bool:
    """Whether ``host`` is an in-process test client's name for the application.

    The ``Host`` header alone proves nothing: a page whose name resolves to
    this machine could be called ``test``.  What an in-process transport
    cannot hide is the scope's ``server``: a network ASGI server (anyflow's
    ``serve()``, uvicorn, hypercorn) puts there the address of the socket the request came in on, an
    IP address, while ``httpx.ASGITransport`` and Starlette's ``TestClient``
    put the host of the URL they were given (with its port, or None for the
    scheme's default).  uvicorn and hypercorn give an IP address and port for
    a TCP socket and no server at all for a Unix socket.  So the name is
    accepted only when it is one of the conventional test names *and* the
    scope's server names it too: a request that came through a socket never
    does.
    """
    server = scope.get("server")
    if not isinstance(server, (tuple, list)) or len(server) != 2:
        return False
    name, port = server
    return (
        isinstance(name, str)
        and (port is None or isinstance(port, int))
        and name.lower() in IN_PROCESS_NAMES
        and host_name(host) == name.lower()
    )


def _origin_allowed(origin: str, host: str | None, cors: frozenset[str]) -> bool:
    if "*" in cors or origin in cors:
        return True
    if host is None:
        return False
    # Same origin: the page was served by this server, under the name the
    # request names.  The scheme is left out: behind a proxy that ends TLS the
    # page is https and the request reaches the server as http; a page of
    # another scheme on the same host and port can only be this server's.
    _, _, netloc = origin.partition("://")
    return netloc.lower() == host.strip().lower()


class RequestGuard:
    """ASGI middleware applying the module's rules 1 to 4, before anything else."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = hosts
        self.cors = frozenset(o.rstrip("/") for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        host = origin = content_type = length = chunked = None
        for key, value in headers:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                chunked = value
        # A body left unread means the server drops the connection after the
        # answer; saying so keeps a client from sending its next request on it.
        has_body = chunked is not None or (length is not None and length.strip() not in (b"", b"0"))
        if host is not None and not self.hosts.allows(host) and not in_process_host(host, scope):
            await _refuse(
                send,
                has_body,
                400,
                f"this server does not answer to the Host {host_name(host)!r}; if that is its "
                "name, start it with allowed_hosts=[...] (--allowed-host), or '*' for any",
            )
            return
        method = scope["method"]
        if (
            method not in SAFE_METHODS
            and origin is not None
            and not _origin_allowed(origin.rstrip("/"), host, self.cors)
        ):
            await _refuse(
                send,
                has_body,
                403,
                f"requests from the web origin {origin!r} are refused; list it in "
                "cors_origins (--cors-origin) to let its pages use this server",
            )
            return
        if has_body and not _is_json(content_type):
            await _refuse(
                send,
                has_body,
                415,
                f"a request body must be JSON, sent with Content-Type: application/json, "
                f"not {content_type or 'no Content-Type'}",
            )
            return
        path = scope["path"]
        if method in ("GET", "HEAD") and (path == "/" or path.startswith("/static/")):
            await self.app(scope, receive, _with_page_headers(send))
            return
        await self.app(scope, receive, send)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _with_page_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *PAGE_HEADERS]}
        await send(message)

    return sending


async def _refuse(send: Send, close: bool, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
