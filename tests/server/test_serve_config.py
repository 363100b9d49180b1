"""How ``WorkflowServer.serve()`` listens and how long it keeps a connection.

With hypercorn's defaults (before anyflow served HTTP itself), a burst of
connections overflowed its backlog of 100, and an idle connection was closed
after 5 s, the time httpx keeps one in its pool: a client reusing it at that
moment got "Server disconnected" (tests/server/test_many_streams.py failed so
on a loaded machine).
"""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import httpx

from anyflow.server._http import Limits
from anyflow.server._serve import BACKLOG, LIMITS, _listen


def test_idle_connections_are_kept_longer_than_clients_keep_them() -> None:
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    # The server must not be the one to close a connection a client may still reuse.
    assert LIMITS.keep_alive > client_expiry
    assert LIMITS.keep_alive >= 60  # browsers keep theirs up to about a minute
    assert Limits() == LIMITS  # serve() uses the documented defaults


def test_the_listening_socket_is_bound_before_serving_with_a_deep_backlog() -> None:
    sock, url = _listen("127.0.0.1", 0)
    try:
        port = int(url.rsplit(":", 1)[1])
        assert sock.getsockname()[1] == port
        assert BACKLOG >= 1024
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # queued in the backlog: nothing accepts it yet
    finally:
        sock.close()


def test_an_ipv6_address_is_listened_on_and_bracketed_in_the_url() -> None:
    if not socket.has_ipv6:
        return
    try:
        sock, url = _listen("::1", 0)
    except OSError:  # no IPv6 loopback in this container
        return
    with sock:
        assert url == f"http://[::1]:{sock.getsockname()[1]}"


async def test_accepted_connections_send_small_writes_at_once() -> None:
    # TCP_NODELAY: a response's one write is not held back for a delayed ACK.
    sock, url = _listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    async with (
        await anyio.abc.SocketListener.from_socket(sock) as listener,
        await anyio.connect_tcp("127.0.0.1", port),
        await listener.accept() as accepted,
    ):
        raw = accepted.extra(anyio.abc.SocketAttribute.raw_socket)
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert url.startswith("http://127.0.0.1:")
