"""The server's guards: each bad request is refused with a reason, and the runs go on."""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from anyflow.server import WorkflowServer

from .conftest import demo_server

if TYPE_CHECKING:
    from collections.abc import Callable

ANSWER = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
JSON = {"Content-Type": "application/json"}


def test_it_listens_on_loopback_unless_told_otherwise() -> None:
    assert inspect.signature(WorkflowServer.serve).parameters["host"].default == "127.0.0.1"


async def _chunked_post(url: str, path: str, chunks: list[bytes]) -> int:
    """POST ``chunks`` with Transfer-Encoding: chunked; the response's status."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
    head += "Content-Type: application/json\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(f"{head}Connection: close\r\n\r\n".encode() + body)
        answer = b""
        with anyio.fail_after(30):
            while b"\r\n" not in answer:
                answer += await stream.receive()
    return int(answer.split()[1])


@pytest.fixture
def small_limit_url(serve: Callable[[WorkflowServer], str]) -> str:
    # Servers are started by sync fixtures: the blocking portal that runs one
    # in its own thread cannot be driven from inside a trio test.
    return serve(demo_server(max_body_bytes=1000))


@pytest.fixture
def cors_urls(serve: Callable[[WorkflowServer], str]) -> tuple[str, str]:
    return serve(demo_server()), serve(demo_server(cors_origins=["http://ui.example"]))


async def test_a_body_over_the_limit_is_413_and_the_run_goes_on(small_limit_url: str) -> None:
    url = small_limit_url
    async with httpx.AsyncClient(base_url=url) as http:
        await http.post("/workflows/ask/run-nowait", json={"handler_id": "a"})
        big = {"event": {"type": "Answer", "value": {"key": "name", "response": "x" * 2000}}}
        refused = await http.post("/events/a", json=big)
        assert refused.status_code == 413
        assert "limit of 1000 bytes" in refused.json()["detail"]

        # Chunked, without a Content-Length: counted as it arrives.  Sent over a
        # raw socket: an upload the server cuts short leaves httpx's body
        # generator half-read, which trio reports as a leak.
        assert await _chunked_post(url, "/events/a", [b" " * 100] * 20) == 413
        assert (await http.post("/events/a", json={"event": ANSWER})).status_code == 200
        done = await http.post("/workflows/greet/run", json={"start_event": {"name": "Bo"}})
        assert done.json()["status"] == "completed"


@pytest.mark.parametrize("sent", [0, 10, 1200], ids=["no-body", "part", "whole"])
async def test_a_413_closes_the_connection(small_limit_url: str, sent: int) -> None:
    """The body over the limit is left unread, so the connection cannot carry
    another request (its next bytes would be the rest of the body): the 413
    says ``Connection: close`` and the server closes it.  (A client that sent
    its next request on it got a dropped connection.)"""
    address = httpx.URL(small_limit_url)
    assert address.port is not None
    head = (
        f"POST /workflows/greet/run HTTP/1.1\r\nHost: {address.host}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1200\r\n\r\n"
    )
    async with await anyio.connect_tcp(address.host, address.port) as stream:
        await stream.send(head.encode() + b" " * sent)
        answer = b""
        with anyio.fail_after(30):
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:  # until the server closes the connection
                    answer += await stream.receive()
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413 "), answer
    headers = rest.split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")
    assert b"connection: close" in headers
    assert b"limit of 1000 bytes" in answer
    async with httpx.AsyncClient(base_url=small_limit_url, timeout=30) as http:
        too_big = b"{" + b" " * 1000 + b"}"
        for _ in range(3):  # a 413, then the client's next request on a fresh connection
            refused = await http.post("/workflows/greet/run", content=too_big, headers=JSON)
            assert refused.status_code == 413
            assert refused.headers["connection"] == "close"
            assert (await http.get("/health")).status_code == 200


async def test_an_event_no_step_accepts_is_400_not_dropped(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        await http.post(
            "/workflows/count/run-nowait", json={"handler_id": "c", "start_event": {"count": 1}}
        )
        # Counted is one of the workflow's types (its stop event) but no step takes it.
        refused = await http.post(
            "/events/c", json={"event": {"type": "Counted", "value": {"total": 1}}}
        )
        # The run may have finished already (409) or not (400): never a 200.
        assert refused.status_code in (400, 409), refused.text
        await http.post("/workflows/ask/run-nowait", json={"handler_id": "q"})
        wrong = await http.post("/events/q", json={"event": {"type": "StopEvent", "value": {}}})
        assert wrong.status_code == 400
        assert "accepts" in wrong.json()["detail"]
        assert (await http.post("/events/q", json={"event": ANSWER})).status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"handler_id": "x" * 201}, "handler_id"),
        ({"handler_id": 7}, "handler_id"),
        ({"context": {"state": {}}}, "takes no context"),
        ({"start_event": {"count": "three"}}, "count"),
        ({"start_event": {"type": "Progress", "value": {}}}, "unknown event type"),
        ({"start_event": [1, 2]}, "JSON object"),
    ],
)
async def test_a_bad_start_is_400_naming_the_problem(url: str, body: dict, detail: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        refused = await http.post("/workflows/count/run-nowait", json=body)
        assert refused.status_code == 400, refused.text
        assert detail in refused.json()["detail"]
        assert (await http.get("/handlers")).json()["handlers"] == []


async def test_cors_is_closed_unless_origins_are_listed(cors_urls: tuple[str, str]) -> None:
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    closed, opened = cors_urls
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{closed}/workflows", headers={"Origin": "http://ui.example"})
        assert "access-control-allow-origin" not in answer.headers
        allowed = await http.options(f"{opened}/workflows/greet/run", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
        other = await http.get(f"{opened}/workflows", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_a_204_leaves_the_connection_usable(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        done = await http.post("/workflows/greet/run", json={"handler_id": "g"})
        assert done.status_code == 200
        for _ in range(3):
            nothing = await http.get("/events/g", params={"after_sequence": "now"})
            assert nothing.status_code == 204
            assert nothing.content == b""
            assert (await http.get("/health")).json() == {"status": "healthy"}


async def test_errors_do_not_leak_internals(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        body = (await http.post("/workflows/fail/run")).json()
        assert body["status"] == "failed"
        assert "Traceback" not in body["error"]
        assert "File " not in body["error"]
