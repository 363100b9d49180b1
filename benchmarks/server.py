"""``python -m benchmarks server``: anyflow's HTTP server against the incumbent's.

What: the two requests a client of a workflow server makes most, under 1 and
32 concurrent clients:

* ``run``: ``POST /workflows/one/run``, the blocking run of a one-step workflow
  (``StartEvent -> StopEvent``); its latency is the request's.
* ``stream``: ``POST /workflows/stream/run-nowait`` and then ``GET
  /events/{handler_id}?after_sequence=-1`` (SSE) read to its end, for a workflow
  whose one step writes 10 events to the stream before its ``StopEvent``; its
  latency is the two requests' together, from the POST to the last frame.
* ``first``: the same requests, timed from the POST to the first event frame
  (the stream is then read to its end and checked, off the clock).
* ``replay``: a blocking ``POST /workflows/stream/run`` (off the clock), then
  the SSE stream of that finished run's events from the start, timed from the
  GET to the last frame.

``--store sqlite`` gives both servers a SQLite store in a temporary file
(anyflow's ``SqliteStore``, the incumbent's ``SqliteWorkflowStore``) instead of
their in-memory default.

Who: anyflow's ``WorkflowServer`` served by its ``serve()`` (anyflow's own
HTTP/1.1 server on anyio and h11, ``anyio-h11`` in the tables) on asyncio and on
trio, its ASGI app on uvicorn (asyncio) and on hypercorn (asyncio, trio: what
``serve()`` used before it served HTTP itself), and the incumbent's
``WorkflowServer`` (llama-agents-server, on llama-index-workflows) on uvicorn,
the server its ``serve()`` uses.  Both servers keep their default store: anyflow's
``MemoryStore`` (a ``DurableRuntime`` journals every tick to it) and the
incumbent's ``MemoryWorkflowStore`` (its runtime persists handlers, events and
ticks to it); anyflow's keeps every run, the incumbent's its last 1,000
finished ones (``max_completed``), in a dict it scans for every handler lookup.
The workflows are the ones of the engine benchmarks (``TrivialFlow``,
``StreamFlow``), written once per engine.  Three floor rows, a bare Starlette
app answering the same routes with canned JSON (and 11 canned SSE frames), on
anyflow's HTTP server (asyncio, trio) and on uvicorn, show what the HTTP stack
alone costs; four raw floor rows, a bare ASGI callable answering with canned
bytes on anyflow's HTTP server and on hypercorn (asyncio, trio each), what
each HTTP server alone costs.

How:

* Every server runs in its own process (``python -m benchmarks.server --child
  KEY``), all started before the first measurement and idle when not measured;
  the load generator is this process, on asyncio, with one client per
  concurrent client, each on one keep-alive connection, connected before the
  clock starts: an ``httpx.AsyncClient`` (``--client httpx``, the default) or
  HTTP/1.1 written and parsed by hand on an anyio socket (``--client raw``:
  ~0.45 ms of CPU per ``stream`` run against anyflow where httpx takes ~2 ms,
  which with one client is latency in series with the server's).  Every server gets the same
  client in a run.  Each client takes the next request as soon as its last one is done,
  until a phase's count of requests is reached.
* Uvicorn runs with ``loop="asyncio"`` and ``http="h11"`` (what its ``"auto"``
  picks when uvloop and httptools are not installed, as here) and, like
  hypercorn and anyflow's own server, without an access log (the incumbent's ``serve()``
  leaves uvicorn's access log on; it is off here for both).
* Repetitions are interleaved (``for rep: for server: for workload: for
  clients``), the servers' order rotated each repetition, after a warm-up of
  every server and workload.  Latencies are pooled over the repetitions
  (median, p95); throughput is the median over repetitions of requests / wall
  time.  CPU per run is the server process's user + system time (from
  ``/proc``, in clock ticks of 10 ms) and the load generator's, each over the
  phase, divided by the runs, median over repetitions: on a shared machine it
  moves less than wall-clock figures, which count the time a process waits for
  a core.  The httpx load generator costs about as much CPU per request as a
  server; on a machine of 2 cores they compete for them at 32 clients.
* Every response is checked (status, result, the 10 events in order and the
  StopEvent last) and a wrong one fails the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib.metadata
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import anyio.to_thread

from ._common import check
from ._harness import fmt_us, load_average, machine_info

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence

__all__ = ["CLIENTS", "SERVERS", "main"]

ROOT = Path(__file__).resolve().parent.parent
STREAMED = 10
"""Events the ``stream`` workflow writes to its stream."""
WORKLOADS = ("run", "stream", "first", "replay")
PACKAGES = (
    "anyflow",
    "llama-agents-server",
    "llama-index-workflows",
    "starlette",
    "hypercorn",
    "uvicorn",
    "h11",
    "httpx",
    "anyio",
    "trio",
)


@dataclass(frozen=True)
class Server:
    """One server process: whose app, on which HTTP server and event loop."""

    key: str
    engine: str
    """``anyflow``, ``incumbent``, ``floor`` (bare Starlette) or ``raw`` (bare ASGI)."""
    http: str
    """``anyio-h11`` (anyflow's own, ``serve()``'s), ``hypercorn`` or ``uvicorn``."""
    backend: str

    @property
    def label(self) -> str:
        return f"{self.engine} {self.http}/{self.backend}"


OWN = "anyio-h11"
"""anyflow's own HTTP server (``anyflow.server._http``), as ``serve()`` runs it."""
SERVERS = {
    s.key: s
    for s in (
        Server("incumbent", "incumbent", "uvicorn", "asyncio"),
        Server("anyflow-asyncio", "anyflow", OWN, "asyncio"),
        Server("anyflow-trio", "anyflow", OWN, "trio"),
        Server("anyflow-uvicorn", "anyflow", "uvicorn", "asyncio"),
        Server("anyflow-hypercorn-asyncio", "anyflow", "hypercorn", "asyncio"),
        Server("anyflow-hypercorn-trio", "anyflow", "hypercorn", "trio"),
        Server("floor-asyncio", "floor", OWN, "asyncio"),
        Server("floor-trio", "floor", OWN, "trio"),
        Server("floor-uvicorn", "floor", "uvicorn", "asyncio"),
        Server("raw-asyncio", "raw", OWN, "asyncio"),
        Server("raw-trio", "raw", OWN, "trio"),
        Server("raw-hypercorn-asyncio", "raw", "hypercorn", "asyncio"),
        Server("raw-hypercorn-trio", "raw", "hypercorn", "trio"),
    )
}
INCUMBENT = "incumbent"


# The server side: runs in the child process.


def _listen() -> tuple[socket.socket, str]:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on the accepted sockets of
    # a listener whose proto says TCP; with proto 0 (socket.socket's default),
    # uvicorn's small writes wait for delayed ACKs, ~40 ms per request on Linux.
    # The accepted sockets also inherit the listener's TCP_NODELAY.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


STORE_ENV = "ANYFLOW_BENCH_SERVER_STORE"
"""``memory`` (the default) or a SQLite file's path: the children's store."""


def _sqlite_path() -> str | None:
    store = os.environ.get(STORE_ENV, "memory")
    return None if store == "memory" else store


def _anyflow_server() -> Any:
    from anyflow.durable import SqliteStore
    from anyflow.server import WorkflowServer

    from .anyflow_impl import StreamFlow, TrivialFlow

    path = _sqlite_path()
    server = WorkflowServer(SqliteStore(path) if path else None)  # default: a MemoryStore
    server.add_workflow("one", TrivialFlow())
    server.add_workflow("stream", StreamFlow())
    return server


def _incumbent_app() -> Any:
    from llama_agents.server import SqliteWorkflowStore, WorkflowServer

    from .incumbent_impl import StreamFlow, TrivialFlow

    path = _sqlite_path()
    # The default: a MemoryWorkflowStore.
    server = WorkflowServer(workflow_store=SqliteWorkflowStore(path)) if path else WorkflowServer()
    server.add_workflow("one", TrivialFlow(timeout=None))
    server.add_workflow("stream", StreamFlow(timeout=None))
    return server.app


def _floor_app() -> Any:
    """The same routes with canned answers: the HTTP stack without an engine."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    def handler(status: str, result: Any) -> dict[str, Any]:
        return {
            "handler_id": uuid.uuid4().hex,
            "workflow_name": "one",
            "run_id": uuid.uuid4().hex,
            "status": status,
            "started_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00",
            "completed_at": None,
            "error": None,
            "result": result,
        }

    stop = {"type": "StopEvent", "value": {"result": 1}}

    async def health(request: Any) -> Any:
        return JSONResponse({"status": "healthy"})

    async def run(request: Any) -> Any:
        await request.json()
        return JSONResponse(handler("completed", stop))

    async def run_nowait(request: Any) -> Any:
        await request.json()
        return JSONResponse(handler("running", None))

    async def events(request: Any) -> Any:
        async def frames() -> Any:
            for i in range(STREAMED):
                payload = json.dumps({"type": "Progress", "value": {"i": i}})
                yield f"id: {i}\ndata: {payload}\n\n"
            stopped = {"type": "StopEvent", "value": {"result": STREAMED}}
            yield f"id: {STREAMED}\ndata: {json.dumps(stopped)}\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/workflows/{name}/run", run, methods=["POST"]),
            Route("/workflows/{name}/run-nowait", run_nowait, methods=["POST"]),
            Route("/events/{handler_id}", events, methods=["GET"]),
        ]
    )


def _raw_app() -> Any:
    """The same answers as the floor's, in bytes from a bare ASGI callable.

    No routing framework, no engine, no store: each response is its head and
    its whole body in one message, the SSE stream too (11 frames), so what is
    left is the HTTP server's cost and the load generator's.
    """
    frames = [
        f"id: {i}\ndata: {json.dumps({'type': 'Progress', 'value': {'i': i}})}\n\n"
        for i in range(STREAMED)
    ]
    stopped = {"type": "StopEvent", "value": {"result": STREAMED}}
    frames.append(f"id: {STREAMED}\ndata: {json.dumps(stopped)}\n\n")
    sse = "".join(frames).encode()
    health = b'{"status":"healthy"}'

    def handler(status: str, result: Any) -> bytes:
        return json.dumps(
            {"handler_id": uuid.uuid4().hex, "status": status, "result": result}
        ).encode()

    def start(body: bytes, content_type: bytes) -> dict[str, Any]:
        return {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:  # the request's body, unread
            more = (await receive()).get("more_body", False)
        path: str = scope["path"]
        content_type = b"application/json"
        if path.startswith("/events/"):
            body, content_type = sse, b"text/event-stream"
        elif path.endswith("/run-nowait"):
            body = handler("running", None)
        elif path.endswith("/run"):
            body = handler("completed", {"type": "StopEvent", "value": {"result": 1}})
        else:
            body = health
        await send(start(body, content_type))
        await send({"type": "http.response.body", "body": body})

    return app


async def _own(app: Any, stop: anyio.Event, started: Callable[[str], None]) -> None:
    """A floor app on anyflow's HTTP server, as ``serve()`` runs it."""
    from anyflow.server._http import serve_http

    sock, url = _listen()
    started(url)
    await serve_http(app, sock, stop=stop)


async def _hypercorn(app: Any, stop: anyio.Event, started: Callable[[str], None]) -> None:
    """An app on hypercorn, as anyflow's ``serve()`` ran it before it served
    HTTP itself (hypercorn runs the app's lifespan; no access log)."""
    import sniffio
    from hypercorn.config import Config

    sock, url = _listen()
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 5.0
    config.keep_alive_timeout = 2.0
    config.accesslog = None
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve
    else:
        from hypercorn.asyncio import serve  # type: ignore[assignment]
    started(url)
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


async def _uvicorn(app: Any, stop: anyio.Event, started: Callable[[str], None]) -> None:
    import uvicorn

    sock, url = _listen()
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    async def on_stop() -> None:
        await stop.wait()
        server.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(on_stop)
        started(url)
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()


async def _child(server: Server) -> None:
    """Serve until standard input is closed; the URL goes to standard output."""
    stop = anyio.Event()

    def started(url: str) -> None:
        print(url, flush=True)

    async def watch_stdin() -> None:
        await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_stdin)
        if server.engine == "anyflow" and server.http == OWN:
            wfs = _anyflow_server()
            url = await tg.start(functools.partial(wfs.serve, "127.0.0.1", 0, handle_signals=False))
            started(url)
            await stop.wait()
            wfs.stop()  # serve() returns once it has shut down: nothing to cancel
            return
        else:
            if server.engine == "anyflow":
                app = _anyflow_server().app
            elif server.engine == INCUMBENT:
                app = _incumbent_app()
            elif server.engine == "raw":
                app = _raw_app()
            else:
                app = _floor_app()
            serve = {"uvicorn": _uvicorn, "hypercorn": _hypercorn, OWN: _own}[server.http]
            await serve(app, stop, started)
        tg.cancel_scope.cancel()


# The client side: this process.


class Child:
    """A server process, and its CPU time as the kernel counts it."""

    def __init__(self, server: Server, log_dir: str, store: str = "memory") -> None:
        self.server = server
        self.log_path = os.path.join(log_dir, f"{server.key}.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        if store != "memory":
            env[STORE_ENV] = os.path.join(log_dir, f"{server.key}.db")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server", "--child", server.key],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.url = ""

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            self.close()
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                raise RuntimeError(f"{self.server.key} did not start:\n{log.read()[-3000:]}")
        self.url = line

    def cpu_s(self) -> float:
        """User + system seconds of the server process so far (Linux), or nan."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Client(Protocol):
    """One load-generating client: one keep-alive connection to a server.

    Every workload makes its requests through these three calls, so the checks
    and the JSON decoding are the same code whichever client carries them.
    """

    async def connect(self) -> None:
        """Open the connection (a ``GET /health``), off the clock."""

    async def post(self, path: str, payload: Any) -> tuple[int, bytes]:
        """POST ``payload`` as JSON; the answer's status and body."""
        ...

    def events(self, path: str) -> AsyncGenerator[str, None]:
        """GET an SSE stream; the payload of each ``data:`` line, read to its end."""
        ...

    async def aclose(self) -> None: ...


class HttpxClient:
    """An ``httpx.AsyncClient`` limited to one keep-alive connection."""

    def __init__(self, url: str) -> None:
        import httpx

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # verify=False: plain HTTP, and building the default SSL context takes ~70 ms
        self._client = httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits, verify=False)

    async def connect(self) -> None:
        response = await self._client.get("/health")
        check(response.status_code == 200, f"health: {response.status_code}")

    async def post(self, path: str, payload: Any) -> tuple[int, bytes]:
        response = await self._client.post(path, json=payload)
        return response.status_code, response.content

    async def events(self, path: str) -> AsyncGenerator[str, None]:
        async with self._client.stream("GET", path) as stream:
            if stream.status_code != 200:
                body = await stream.aread()
                check(False, f"events: {stream.status_code} {body[:300]!r}")
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    yield line[5:]

    async def aclose(self) -> None:
        await self._client.aclose()


class RawClient:
    """HTTP/1.1 by hand on one anyio TCP connection: the least a client can do.

    A request is written in one ``send()``; a response is read by its
    ``Content-Length`` or its chunks (what both servers use), its head split
    into lines and nothing else, an SSE body cut into lines.  No timeouts, no
    pool, no header validation: it costs a fraction of httpx's CPU per
    request, so the figures measure the servers more than the client.  A
    response that says ``Connection: close`` (or neither length nor chunks)
    is read to the end of the connection, which the next request opens again.
    """

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rpartition(":")
        self._host, self._port = host, int(port)
        self._host_line = f"Host: {host}:{port}\r\n".encode()
        self._stream: anyio.abc.SocketStream | None = None
        self._buf = bytearray()

    async def connect(self) -> None:
        status, body = await self._request(b"GET /health HTTP/1.1\r\n%s\r\n" % self._host_line)
        check(status == 200, f"health: {status} {body[:300]!r}")

    async def post(self, path: str, payload: Any) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        return await self._request(
            b"POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self._host_line, len(body), body)
        )

    async def events(self, path: str) -> AsyncGenerator[str, None]:
        await self._send(b"GET %s HTTP/1.1\r\n%s\r\n" % (path.encode(), self._host_line))
        status, headers = await self._head()
        if status != 200:
            body = b"".join([piece async for piece in self._body(headers)])
            check(False, f"events: {status} {body[:300]!r}")
        rest = b""
        async for piece in self._body(headers):
            *lines, rest = (rest + piece).split(b"\n")
            for line in lines:
                if line.startswith(b"data:"):
                    yield line[5:].decode()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def _request(self, request: bytes) -> tuple[int, bytes]:
        await self._send(request)
        status, headers = await self._head()
        return status, b"".join([piece async for piece in self._body(headers)])

    async def _send(self, data: bytes) -> None:
        if self._stream is None:
            self._stream = await anyio.connect_tcp(self._host, self._port)
            self._buf.clear()
        await self._stream.send(data)

    async def _fill(self) -> None:
        assert self._stream is not None
        self._buf += await self._stream.receive(65536)

    async def _head(self) -> tuple[int, dict[bytes, bytes]]:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            await self._fill()
        status_line, *lines = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(b" ", 2)[1]), headers

    async def _body(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive; the connection is then ready again."""
        length = headers.get(b"content-length")
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                while (eol := self._buf.find(b"\r\n")) < 0:
                    await self._fill()
                size = int(bytes(self._buf[:eol]).split(b";", 1)[0], 16)
                del self._buf[: eol + 2]
                if size == 0:
                    while (eol := self._buf.find(b"\r\n")) != 0:  # trailers, then a blank line
                        if eol > 0:
                            del self._buf[: eol + 2]
                        else:
                            await self._fill()
                    del self._buf[:2]
                    break
                while len(self._buf) < size + 2:
                    await self._fill()
                yield bytes(self._buf[:size])
                del self._buf[: size + 2]
        elif length is not None:
            remaining = int(length)
            while remaining:
                if not self._buf:
                    await self._fill()
                piece = bytes(self._buf[:remaining])
                del self._buf[: len(piece)]
                remaining -= len(piece)
                yield piece
        else:  # the body ends with the connection
            while True:
                if self._buf:
                    yield bytes(self._buf)
                    self._buf.clear()
                try:
                    await self._fill()
                except anyio.EndOfStream:
                    break
            headers[b"connection"] = b"close"
        if headers.get(b"connection", b"").lower() == b"close":
            await self.aclose()


CLIENTS: dict[str, Callable[[str], Client]] = {"httpx": HttpxClient, "raw": RawClient}
"""The load generators, by ``--client``: each the same for every server."""
CLIENT_NOTES = {
    "httpx": "httpx, one `httpx.AsyncClient` (one keep-alive connection) per client",
    "raw": "raw, HTTP/1.1 written and parsed by hand on one anyio socket per client "
    "(one keep-alive connection), every answer checked as with httpx",
}


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        check(False, f"{what}: not JSON: {body[:300]!r}")


async def _run_one(client: Client) -> float | None:
    status, body = await client.post("/workflows/one/run", {"start_event": {"n": 1}})
    check(status == 200, f"run: {status} {body[:300]!r}")
    result = _json(body, "run").get("result")
    check(
        isinstance(result, dict) and result.get("value") == {"result": 1},
        f"run: the result is {result!r}",
    )
    return None


async def _start_stream(client: Client) -> str:
    status, body = await client.post(
        "/workflows/stream/run-nowait", {"start_event": {"n": STREAMED}}
    )
    check(status == 200, f"run-nowait: {status} {body[:300]!r}")
    handler_id: str = _json(body, "run-nowait")["handler_id"]
    return handler_id


async def _stream_one(client: Client) -> float | None:
    await _read_stream(client, await _start_stream(client))
    return None


async def _first_one(client: Client) -> float | None:
    start = time.perf_counter()
    return await _read_stream(client, await _start_stream(client), start)


async def _replay_one(client: Client) -> float | None:
    status, body = await client.post("/workflows/stream/run", {"start_event": {"n": STREAMED}})
    check(status == 200, f"run: {status} {body[:300]!r}")
    handler_id = _json(body, "run")["handler_id"]
    start = time.perf_counter()
    await _read_stream(client, handler_id)
    return time.perf_counter() - start


async def _read_stream(client: Client, handler_id: str, start: float | None = None) -> float | None:
    """Read the run's SSE stream to its end and check it; the seconds from
    ``start`` to its first event frame."""
    first = None
    types: list[str] = []
    seen = 0
    async with contextlib.aclosing(
        client.events(f"/events/{handler_id}?after_sequence=-1")
    ) as frames:
        async for data in frames:
            if first is None and start is not None:
                first = time.perf_counter() - start
            event = json.loads(data)
            types.append(event["type"])
            if event["type"] == "Progress":
                check(event["value"]["i"] == seen, f"events: {event!r} as number {seen}")
                seen += 1
    check(
        seen == STREAMED and types[-1:] == ["StopEvent"],
        f"events: {seen} Progress of {STREAMED}, then {types[-1:]}",
    )
    return first


REQUESTS: dict[str, Callable[[Client], Awaitable[float | None]]] = {
    "run": _run_one,
    "stream": _stream_one,
    "first": _first_one,
    "replay": _replay_one,
}
"""Each makes one request (or two) and checks the answer; it returns the
latency of its timed part, or None when that is the whole call."""


@dataclass
class Phase:
    """One workload, at one concurrency, against one server, once."""

    runs: int
    wall_s: float
    latencies_s: list[float]
    server_cpu_s: float
    client_cpu_s: float


async def _phase(
    child: Child, workload: str, clients: int, runs: int, client: str = "httpx"
) -> Phase:
    one = REQUESTS[workload]
    latencies: list[float] = []
    remaining = runs
    pool = [CLIENTS[client](child.url) for _ in range(clients)]
    try:
        async with anyio.create_task_group() as tg:  # connect off the clock
            for member in pool:
                tg.start_soon(member.connect)

        async def worker(member: Client) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                timed = await one(member)
                latencies.append(time.perf_counter() - start if timed is None else timed)

        server_cpu = child.cpu_s()
        client_cpu = time.process_time()
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for member in pool:
                tg.start_soon(worker, member)
        wall = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu
        server_cpu = child.cpu_s() - server_cpu
    finally:
        for member in pool:
            await member.aclose()
    return Phase(runs, wall, latencies, server_cpu, client_cpu)


@dataclass(frozen=True)
class Settings:
    mode: str
    clients: tuple[int, ...]
    reps: int
    runs: dict[tuple[str, int], int]
    """Requests per phase, by (workload, clients)."""
    warmup: int

    @classmethod
    def full(cls, clients: tuple[int, ...]) -> Settings:
        runs = {}
        for c in clients:
            runs["run", c] = max(150, 15 * c)
            for workload in ("stream", "first", "replay"):
                runs[workload, c] = max(60, 6 * c)
        return cls("full", clients, 5, runs, 20)

    @classmethod
    def quick(cls, clients: tuple[int, ...]) -> Settings:
        runs = {}
        for c in clients:
            runs["run", c] = max(20, 2 * c)
            for workload in ("stream", "first", "replay"):
                runs[workload, c] = max(10, 2 * c)
        return cls("quick", clients, 1, runs, 3)


@dataclass
class Result:
    server: Server
    workload: str
    clients: int
    phases: list[Phase] = field(default_factory=list)

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(x * 1e3 for p in self.phases for x in p.latencies_s)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95_ms(self) -> float:
        values = self.latencies_ms
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    @property
    def throughput(self) -> float:
        return statistics.median(p.runs / p.wall_s for p in self.phases)

    @property
    def runs(self) -> int:
        return sum(p.runs for p in self.phases)

    @property
    def server_cpu_ms(self) -> float:
        return statistics.median(p.server_cpu_s * 1e3 / p.runs for p in self.phases)

    @property
    def client_cpu_ms(self) -> float:
        return statistics.median(p.client_cpu_s * 1e3 / p.runs for p in self.phases)


async def _measure(
    children: Sequence[Child],
    settings: Settings,
    log: Any = sys.stderr,
    workloads: Sequence[str] = WORKLOADS,
    client: str = "httpx",
) -> list[Result]:
    for child in children:  # warm-up: imports, caches, the first runs
        for workload in workloads:
            await _phase(child, workload, 1, settings.warmup, client)
            n = max(settings.clients)
            await _phase(child, workload, n, n, client)
    results = {
        (c.server.key, w, n): Result(c.server, w, n)
        for c in children
        for w in workloads
        for n in settings.clients
    }
    for rep in range(settings.reps):
        shift = rep % len(children)
        for child in [*children[shift:], *children[:shift]]:
            clock = time.perf_counter()
            for workload in workloads:
                for clients in settings.clients:
                    runs = settings.runs[workload, clients]
                    phase = await _phase(child, workload, clients, runs, client)
                    results[child.server.key, workload, clients].phases.append(phase)
            print(
                f"rep {rep + 1}/{settings.reps} {child.server.label}: "
                f"{time.perf_counter() - clock:.1f} s",
                file=log,
                flush=True,
            )
    return list(results.values())


# Reporting.


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _ms(x: float) -> str:
    return fmt_us(x)


def _ratio(x: float) -> str:
    return f"{x:.2f}x"


def _over(x: float, y: float) -> str:
    """``x / y`` as a ratio; a dash for a CPU time under one clock tick (a quick run)."""
    return _ratio(x / y) if y else "—"


def render_markdown(machine: dict[str, Any], run: dict[str, Any], results: Sequence[Result]) -> str:
    by_key = {(r.server.key, r.workload, r.clients): r for r in results}
    lines = [
        "# anyflow's server vs llama-agents-server",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}",
        f"- Python: {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()),
        f"- anyflow revision: {machine['anyflow_revision']}",
        f"- Mode: {run['mode']}; started {run['started']}; total {run['total_s']:.0f} s; "
        f"{run['reps']} repetitions; load average (1/5/15 min) at start "
        f"{' / '.join(map(str, machine['load_average_at_start'] or []))}, at end "
        f"{' / '.join(map(str, run['load_average_at_end'] or []))}",
        f"- Load generator (`--client`): {CLIENT_NOTES[run.get('client', 'httpx')]}",
        "",
        "`run`: a blocking `POST /workflows/one/run` of a one-step workflow; `stream`: "
        f"`POST .../run-nowait` then the SSE stream of its {STREAMED} events and its "
        "StopEvent read to the end; `first`: the same, timed to the first event frame; "
        "`replay`: the SSE stream of a finished run of that workflow, from the start. "
        f"Store: {run['store']}. Latency in ms per run (pooled over the repetitions); "
        "runs/s and CPU ms per run (the server process's user + system time, and the "
        'load generator\'s) are medians over the repetitions. "vs incumbent" is '
        "the incumbent's median latency / this row's, this row's runs/s / the "
        "incumbent's, and the incumbent's server CPU per run / this row's (how many "
        "times faster; the CPU ratio is the steadiest on a shared machine).",
        "",
        "| workload | clients | server | runs | median ms | p95 ms | runs/s "
        "| server CPU ms/run | client CPU ms/run | latency vs incumbent "
        "| runs/s vs incumbent | server CPU vs incumbent |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload in run["workloads"]:
        for clients in run["clients"]:
            base = by_key.get((INCUMBENT, workload, clients))
            for key in SERVERS:
                r = by_key.get((key, workload, clients))
                if r is None:
                    continue
                if r.server.engine == INCUMBENT or base is None:
                    lat = thr = cpu = "baseline" if r.server.engine == INCUMBENT else "—"
                else:
                    lat = f"**{_ratio(base.median_ms / r.median_ms)}**"
                    thr = f"**{_ratio(r.throughput / base.throughput)}**"
                    cpu = f"**{_over(base.server_cpu_ms, r.server_cpu_ms)}**"
                lines.append(
                    f"| {workload} | {clients} | {r.server.label} | {r.runs:,} "
                    f"| {_ms(r.median_ms)} | {_ms(r.p95_ms)} | {r.throughput:,.0f} "
                    f"| {_ms(r.server_cpu_ms)} | {_ms(r.client_cpu_ms)} | {lat} | {thr} "
                    f"| {cpu} |"
                )
    pairs = [
        ("anyflow-uvicorn", "anyflow-asyncio", "anyflow"),
        ("floor-uvicorn", "floor-asyncio", "floor (bare Starlette)"),
    ]
    rows = []
    for uv, hc, what in pairs:
        for workload in run["workloads"]:
            for clients in run["clients"]:
                u = by_key.get((uv, workload, clients))
                h = by_key.get((hc, workload, clients))
                if u is None or h is None:
                    continue
                rows.append(
                    f"| {what} | {workload} | {clients} "
                    f"| {_ratio(h.median_ms / u.median_ms)} "
                    f"| {_ratio(u.throughput / h.throughput)} "
                    f"| {_over(h.server_cpu_ms, u.server_cpu_ms)} |"
                )
    if rows:
        lines += [
            "",
            "Uvicorn against anyflow's HTTP server, both on asyncio (anyflow's / uvicorn "
            "for latency and server CPU, uvicorn / anyflow's for runs/s: above 1x, uvicorn "
            "is faster):",
            "",
            "| app | workload | clients | latency | runs/s | server CPU per run |",
            "|---|---|--:|--:|--:|--:|",
            *rows,
        ]
    lines += [
        "",
        "- Stores: anyflow's default `MemoryStore` (its server always runs a "
        "`DurableRuntime`, which journals every tick to the store) and the incumbent's "
        "default `MemoryWorkflowStore`. anyflow's keeps every run, the incumbent's its "
        "last 1,000 finished ones, which it scans for every handler lookup (runs per "
        f"server in this run: {run['runs_per_server']:,}).",
        '- Uvicorn: `loop="asyncio"`, `http="h11"`, no access log (the incumbent\'s '
        "`serve()` keeps uvicorn's access log; it is off here). Hypercorn: as anyflow's "
        "`serve()` configured it before it served HTTP itself (no access log). "
        "anyio-h11: anyflow's own HTTP server, as `serve()` runs it.",
        "- Floor: a bare Starlette app with the same routes and canned answers (11 canned "
        "SSE frames), on the same HTTP servers: the HTTP stack and the load generator "
        "without a workflow engine.",
        "- Raw floor: a bare ASGI callable answering the same requests with canned bytes "
        "(each body, the SSE stream's too, in one message), on anyflow's HTTP server and "
        "on hypercorn: each HTTP server and the load generator alone.",
    ]
    if run["mode"] != "full":
        lines += ["", f"_{run['mode']} run: few requests, the numbers are not meaningful._"]
    return "\n".join(lines) + "\n"


def to_json(machine: dict[str, Any], run: dict[str, Any], results: Sequence[Result]) -> Any:
    return {
        "machine": machine,
        "settings": run,
        "results": [
            {
                "server": r.server.key,
                "engine": r.server.engine,
                "http": r.server.http,
                "backend": r.server.backend,
                "workload": r.workload,
                "clients": r.clients,
                "runs": r.runs,
                "median_ms": r.median_ms,
                "p95_ms": r.p95_ms,
                "runs_per_s": r.throughput,
                "server_cpu_ms_per_run": r.server_cpu_ms,
                "client_cpu_ms_per_run": r.client_cpu_ms,
                "phases": [
                    {
                        "runs": p.runs,
                        "wall_s": p.wall_s,
                        "server_cpu_s": p.server_cpu_s,
                        "client_cpu_s": p.client_cpu_s,
                        "latencies_s": p.latencies_s,
                    }
                    for p in r.phases
                ],
            }
            for r in results
        ],
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks server",
        description="anyflow's HTTP server vs llama-agents-server, side by side.",
    )
    parser.add_argument("--quick", action="store_true", help="a few requests: a smoke run")
    parser.add_argument(
        "--clients",
        default="1,32",
        help="concurrent clients, comma-separated (default 1,32)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"which servers, comma-separated (default all: {', '.join(SERVERS)})",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"which workloads, comma-separated (default all: {', '.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "sqlite"),
        default="memory",
        help="both servers' store: their in-memory default, or SQLite in a temporary file",
    )
    parser.add_argument(
        "--client",
        choices=tuple(CLIENTS),
        default="httpx",
        help="the load generator, the same for every server: one httpx.AsyncClient per "
        "client (the default), or raw, HTTP/1.1 written and parsed by hand on one anyio "
        "socket, which costs the load generator a fraction of httpx's CPU per request",
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 5; --quick 1)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not set(args.workloads) <= set(WORKLOADS):
        parser.error(f"unknown workload(s); choose from {', '.join(WORKLOADS)}")
    unknown = sorted(set(args.servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients takes positive integers")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        server = SERVERS[args.child]
        anyio.run(_child, server, backend=server.backend)
        return 0
    settings = (Settings.quick if args.quick else Settings.full)(args.clients)
    if args.reps is not None:
        settings = Settings(
            settings.mode, settings.clients, args.reps, settings.runs, settings.warmup
        )
    machine = machine_info()
    machine["packages"] = _versions()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print(
        f"server benchmark, {settings.mode} run on {machine['cpu']} ({machine['cores']} cores), "
        f"{machine['python']}, {args.client} client: {', '.join(args.servers)}",
        file=sys.stderr,
        flush=True,
    )
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anyflow-bench-server-") as logs:
        children = [Child(SERVERS[key], logs, args.store) for key in args.servers]
        try:
            for child in children:
                child.wait_ready()
            results = anyio.run(
                functools.partial(
                    _measure, children, settings, workloads=args.workloads, client=args.client
                ),
                backend="asyncio",
            )
        finally:
            for child in children:
                child.close()
    per_server = len(args.workloads) * (
        settings.warmup + max(settings.clients)
    ) + settings.reps * sum(n for (w, _), n in settings.runs.items() if w in args.workloads)
    run = {
        "mode": settings.mode,
        "started": started,
        "total_s": time.perf_counter() - clock,
        "load_average_at_end": load_average(),
        "clients": list(settings.clients),
        "workloads": list(args.workloads),
        "store": args.store,
        "client": args.client,
        "reps": settings.reps,
        "runs_per_phase": {f"{w} x{c}": n for (w, c), n in settings.runs.items()},
        "runs_per_server": per_server,
    }
    markdown = render_markdown(machine, run, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.md").write_text(markdown, encoding="utf-8")
    data = to_json(machine, run, results)
    (args.out / "server.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    print(f"written to {args.out / 'server.md'} and {args.out / 'server.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
