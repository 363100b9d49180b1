"""anyflow's HTTP/1.1 server against a hostile (or merely unusual) client.

Every test talks to a real listening server with a raw socket, on the test's
backend, and writes the bytes a client would; h11 answers for the protocol,
these tests for what the server makes of it: what is refused and how, what
a client may hold and for how long, and what the application sees.  The
timeouts are made small through ``Limits``, never waited out at their
defaults.  (A body trickled in is the application's to time out:
``test_hostile.py::test_a_slow_body_gets_408_and_the_connection_is_closed``.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import pytest

from anyflow.server._http import DISCONNECT_AT_END, Limits, serve_http
from anyflow.server._serve import _listen, serve

from .conftest import demo_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyflow.server import WorkflowServer

TIMEOUT = 20  # a bound for a test that would otherwise hang, never reached


@contextlib.asynccontextmanager
async def serving_app(
    app: Any, limits: Limits | None = None, graceful_timeout: float = 2.0
) -> AsyncIterator[tuple[str, int]]:
    """Serve a bare ASGI ``app``; its address, until the block ends."""
    sock, _url = _listen("127.0.0.1", 0)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            functools.partial(
                serve_http,
                app,
                sock,
                stop=stop,
                limits=limits or Limits(),
                graceful_timeout=graceful_timeout,
            )
        )
        yield sock.getsockname()[:2]
        stop.set()


@contextlib.asynccontextmanager
async def serving(
    server: WorkflowServer, limits: Limits | None = None
) -> AsyncIterator[tuple[str, int]]:
    """Serve a ``WorkflowServer`` as ``serve()`` does, with ``limits``."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        url = await tg.start(
            functools.partial(
                serve,
                server,
                "127.0.0.1",
                0,
                stop=stop,
                handle_signals=False,
                graceful_timeout=2.0,
                limits=limits or Limits(),
            )
        )
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)
        server.close_streams()
        stop.set()


async def until_closed(stream: anyio.abc.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with anyio.fail_after(TIMEOUT), contextlib.suppress(anyio.EndOfStream):
        while True:
            received += await stream.receive()
    return received


async def until(stream: anyio.abc.SocketStream, marker: bytes, received: bytes = b"") -> bytes:
    """What the server sends until ``marker`` has come (it stays open)."""
    with anyio.fail_after(TIMEOUT):
        while marker not in received:
            received += await stream.receive()
    return received


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *extra, "", ""]
    return "\r\n".join(lines).encode()


def server_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("anyflow") and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def demo() -> WorkflowServer:
    return demo_server()


# Refused: answered with h11's status hint, closed, and not logged.


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),  # two Hosts
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", b"431"),
    ],
    ids=["request-line", "two-hosts", "header-line", "content-length", "oversized-head"],
)
async def test_a_malformed_request_gets_its_status_and_a_closed_connection(
    demo: WorkflowServer, request_bytes: bytes, status: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(request_bytes)
        answer = await until_closed(stream)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" "), answer
    assert b"connection: close" in head.lower()
    assert body.startswith(b'{"detail": ')
    assert server_logs(caplog) == []


async def test_the_head_size_is_bounded_before_it_ends(demo: WorkflowServer) -> None:
    # No end of head in sight: refused once the bound is passed, not read on.
    async with (
        serving(demo, Limits(max_head=1000)) as address,
        await anyio.connect_tcp(*address) as stream,
    ):
        await stream.send(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 2000)
        assert (await until_closed(stream)).startswith(b"HTTP/1.1 431 ")


async def test_garbage_after_a_response_is_refused_after_that_response(
    demo: WorkflowServer,
) -> None:
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/health") + b"\x00\x01 not http\r\n\r\n")
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 400 Bad Request\r\n" in answer


# Held no longer than the limits.


async def test_a_head_that_never_ends_is_cut_after_head_timeout(demo: WorkflowServer) -> None:
    async with (
        serving(demo, Limits(head_timeout=0.1)) as address,
        await anyio.connect_tcp(*address) as stream,
    ):
        await stream.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert await until_closed(stream) == b""


async def test_an_idle_connection_is_closed_after_keep_alive(demo: WorkflowServer) -> None:
    async with (
        serving(demo, Limits(keep_alive=0.1)) as address,
        await anyio.connect_tcp(*address) as stream,
    ):
        await stream.send(get("/health"))
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1") == 1


async def test_a_request_served_longer_than_keep_alive_is_not_cut() -> None:
    # The idle limit is for waiting between requests, never for serving one.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await anyio.sleep(0.3)  # the application's own slow work: 6 limits long
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async with (
        serving_app(app, Limits(keep_alive=0.05)) as address,
        await anyio.connect_tcp(*address) as stream,
    ):
        await stream.send(get("/"))
        answer = await until(stream, b"done\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        # Idle again: closed after the limit.
        assert await until_closed(stream) == b""


# What HTTP/1.1 allows a client.


async def test_pipelined_requests_are_answered_in_order(demo: WorkflowServer) -> None:
    requests = get("/health") + get("/workflows") + get("/nowhere") + get("/health")
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(requests + get("/health", "Connection: close"))
        answer = await until_closed(stream)
    statuses = re.findall(rb"HTTP/1\.1 (\d+) ", answer)
    assert statuses == [b"200", b"200", b"404", b"200", b"200"]
    assert answer.index(b'"workflows"') < answer.index(b'"detail"')


async def test_100_continue_is_sent_when_the_body_is_read(demo: WorkflowServer) -> None:
    body = b'{"start_event": {"name": "Ada"}}'
    head = (
        "POST /workflows/greet/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(head.encode())
        continued = await until(stream, b"\r\n\r\n")
        assert continued == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send(body)
        answer = await until(stream, b"hello Ada")
        assert answer.startswith(b"HTTP/1.1 200 ")
        # The connection goes on.
        await stream.send(get("/health", "Connection: close"))
        assert (await until_closed(stream)).startswith(b"HTTP/1.1 200 ")


async def test_100_continue_refused_before_the_body_closes_the_connection(
    demo: WorkflowServer,
) -> None:
    # The body is never asked for: the client may send it or not, so the
    # connection cannot carry another request.
    head = (
        b"POST /workflows/nowhere/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(head)
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 404 "), answer
    assert b"100 Continue" not in answer


async def test_a_body_sent_after_its_answer_is_skipped_and_the_connection_goes_on() -> None:
    # The application answers without asking for the body (a 404), which the
    # client sends after (httpx writes head and body apart): the connection
    # is kept for the next request, whose answer is not lost to a close.
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"none"})

    head = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n"
    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(head)
        first = await until(stream, b"none")
        await stream.send(b"{}" + get("/", "Connection: close"))
        second = await until_closed(stream)
    assert first.startswith(b"HTTP/1.1 404 ")
    assert b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 404 ")


async def test_head_gets_the_headers_of_get_and_no_body(demo: WorkflowServer) -> None:
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/health").replace(b"GET", b"HEAD", 1) + get("/health"))
        answer = await until(stream, b"}")
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: " in first.lower()
    assert rest.startswith(b"HTTP/1.1 200 ")  # the GET's answer at once: no body between


async def test_http_1_0_is_answered_and_closed(demo: WorkflowServer) -> None:
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/health", version="1.0"))
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"}")


async def test_a_chunked_request_body_is_read(demo: WorkflowServer) -> None:
    body = b'{"start_event": {"name": "Bo"}}'
    head = (
        b"POST /workflows/greet/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:]))
    async with serving(demo) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(head + chunks + b"0\r\n\r\n")
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"hello Bo" in answer


# What the application sees.


async def test_the_scope_is_complete() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        assert (await receive()) == {"type": "http.request", "body": b"", "more_body": False}
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/a%20b/c%2Fd?x=1&y=%20", "X-Thing: Yes", "Connection: close"))
        answer = await until_closed(stream)
        local = stream.extra(anyio.abc.SocketAttribute.local_address)
    assert answer.startswith(b"HTTP/1.1 204 No Content\r\n")
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/c/d"
    assert scope["raw_path"] == b"/a%20b/c%2Fd"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == ""
    assert (b"x-thing", b"Yes") in scope["headers"]
    assert (b"host", b"127.0.0.1") in scope["headers"]
    assert scope["client"] == local
    assert scope["server"] == address


async def test_a_client_leaving_a_stream_is_a_disconnect_and_writes_do_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    left = anyio.Event()
    finished = anyio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["more_body"] is False
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        assert (await receive()) == {"type": "http.disconnect"}
        left.set()
        for _ in range(100):  # to nobody: dropped
            await send({"type": "http.response.body", "body": b"more", "more_body": True})
        finished.set()

    async with serving_app(app) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(get("/"))
            answer = await until(stream, b"first")
        with anyio.fail_after(TIMEOUT):
            await left.wait()
            await finished.wait()
    # The head went with the first chunk.
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_stream_shows_its_head_before_its_first_body() -> None:
    # A stream whose first event is late: its client sees the response start.
    release = anyio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await release.wait()
            await send({"type": "http.response.body", "body": b"late"})
            tg.cancel_scope.cancel()

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/", "Connection: close"))
        head = await until(stream, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        release.set()
        assert (await until_closed(stream)).endswith(b"late\r\n0\r\n\r\n")


async def test_the_response_s_end_answers_a_waiting_receive_with_a_disconnect() -> None:
    # Rule 5: a task watching for the client's leaving ends by itself once
    # the last body is sent (here the task group would hang otherwise), and
    # the connection carries the next request.
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["more_body"] is False

        async def watch() -> None:
            seen.append(await receive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"all"})
        assert DISCONNECT_AT_END in scope["extensions"]

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/"))
        first = await until(stream, b"all\r\n0\r\n\r\n")
        await stream.send(get("/", "Connection: close"))
        second = await until_closed(stream)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")
    assert seen == [{"type": "http.disconnect"}] * 2


async def test_an_application_failing_before_its_response_is_a_500_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("bug")

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/x"))
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"connection: close" in answer.lower()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == ["GET /x failed"]
    assert failures[0].exc_info is not None


async def test_an_application_failing_on_head_gets_the_head_of_a_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("bug")

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/x").replace(b"GET", b"HEAD", 1))
        answer = await until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert answer.endswith(b"\r\n\r\n")  # no body


async def test_an_application_failing_mid_response_cuts_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise RuntimeError("bug")

    async with serving_app(app) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(get("/x"))
        answer = await until_closed(stream)
    assert answer.endswith(b"4\r\nhalf\r\n")  # no last chunk: the client sees a cut
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "GET /x failed"
    ]


# Shutdown.


async def test_shutdown_ends_a_stream_and_closes_an_idle_connection(
    demo: WorkflowServer,
) -> None:
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(demo.serve, port=0, handle_signals=False))
        host, port = url.removeprefix("http://").rsplit(":", 1)
        async with (
            await anyio.connect_tcp(host, int(port)) as idle,
            await anyio.connect_tcp(host, int(port)) as streaming,
        ):
            await idle.send(get("/health"))
            await until(idle, b"}")
            body = b'{"handler_id": "waiting-1"}'
            await streaming.send(
                b"POST /workflows/ask/run-nowait HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await until(streaming, b"waiting-1")
            await streaming.send(get("/events/waiting-1?after_sequence=-1"))
            await until(streaming, b"Question")
            demo.stop()
            assert await until_closed(idle) == b""
            assert (await until_closed(streaming)).endswith(b"0\r\n\r\n")  # ended, not cut
        # serve() has returned: the task group has nothing left to wait for.


async def test_a_busy_request_past_the_grace_period_is_cancelled() -> None:
    cancelled = anyio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async with (
        serving_app(app, graceful_timeout=0.05) as address,
        await anyio.connect_tcp(*address) as stream,
    ):
        await stream.send(get("/"))
        await anyio.wait_all_tasks_blocked()
        # The block's end stops the server; the request is cancelled after 0.05 s.
    assert cancelled.is_set()
