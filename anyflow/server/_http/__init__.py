"""anyflow's own HTTP/1.1 server: anyio for sockets and tasks, h11 for the protocol.

It serves one ASGI application (a ``WorkflowServer``'s) on a socket bound
beforehand, the same on asyncio and trio.  h11 does all the parsing and
framing; this package only moves bytes between it and the socket and
between it and the application, and bounds what a client may hold:

* ``_listener``: accepting connections, and shutting down (stop accepting,
  close idle connections at once, let requests in flight finish within a
  grace period, cancel the rest).
* ``_connection``: one connection's requests, one after another (pipelined
  ones are read ahead and served in order), each as an ASGI ``http`` scope.

Why not hypercorn: on trio, hypercorn alone (a bare ASGI app answering canned
bytes) cost 1.2 ms of server CPU per streamed run, more than twice what this
does, which put the stream targets of issue #17 out of reach; and it wrote a
response's head and body in two writes.  HTTP/2, TLS and WebSockets are not
served: the server sits behind a proxy for those.
"""

from __future__ import annotations

from ._connection import DISCONNECT_AT_END, Limits
from ._listener import serve_http

__all__ = ["DISCONNECT_AT_END", "Limits", "serve_http"]
