"""What ``WorkflowServer.serve()`` asks of hypercorn: the backlog it binds, and
idle connections kept longer than clients keep them.

With hypercorn's own defaults, a burst of connections overflowed its backlog
of 100, and an idle connection was closed after 5 s, the time httpx keeps one
in its pool: a client reusing it at that moment got "Server disconnected"
(tests/server/test_many_streams.py failed so on a loaded machine).
"""

from __future__ import annotations

import socket

import httpx
from hypercorn.config import Config

from anyflow.server._serve import BACKLOG, KEEP_ALIVE, _listen, hypercorn_config


def test_hypercorn_keeps_the_backlog_and_idle_connections_longer_than_clients() -> None:
    sock, url = _listen("127.0.0.1", 0)
    try:
        config = hypercorn_config(Config(), sock.fileno(), graceful_timeout=2.0)
        assert config.bind == [f"fd://{sock.fileno()}"]
        assert url.startswith("http://127.0.0.1:")
    finally:
        sock.close()
    assert config.backlog == BACKLOG
    assert Config().backlog < BACKLOG  # what hypercorn would listen with
    assert config.keep_alive_timeout == KEEP_ALIVE
    # The server must not be the one to close a connection a client may still reuse.
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    assert config.keep_alive_timeout > client_expiry
    assert Config().keep_alive_timeout <= client_expiry  # the race it had
    assert config.graceful_timeout == 2.0
    assert config.accesslog is None


def test_the_listening_socket_is_bound_before_hypercorn_starts() -> None:
    sock, url = _listen("127.0.0.1", 0)
    try:
        port = int(url.rsplit(":", 1)[1])
        assert sock.getsockname()[1] == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # queued in the backlog: nothing accepts it yet
    finally:
        sock.close()
