"""A hostile client: what a web page, a bad id or a slow sender must not get.

Each test plays one attack against a real server (in its own thread, on the
test's backend) or against the ASGI application in process, and checks both
the refusal and that the server and its runs go on as if nothing came.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from anyflow import Context, StartEvent, StopEvent, Workflow, step
from anyflow.server.__main__ import exposure_problem
from anyflow.server._guard import HostPolicy
from tests.conftest import stores_of_kind

from .conftest import demo_server
from .flows import Answer, Question

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from anyflow.durable import Store
    from anyflow.server import WorkflowServer

ROOT = Path(__file__).parents[2]
FLOWS = Path(__file__).with_name("flows.py")
ANSWER = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
EVIL = "http://evil.example"


async def _waiting_run(http: httpx.AsyncClient, handler_id: str) -> None:
    started = await http.post("/workflows/ask/run-nowait", json={"handler_id": handler_id})
    assert started.status_code == 200, started.text


async def _answer_and_finish(http: httpx.AsyncClient, handler_id: str) -> None:
    sent = await http.post(f"/events/{handler_id}", json={"event": ANSWER})
    assert sent.json() == {"status": "sent"}
    # The stream ends after the run's terminal event.
    with anyio.fail_after(30):
        await http.get(f"/events/{handler_id}", params={"after_sequence": -1, "sse": "false"})
    done = (await http.get(f"/handlers/{handler_id}")).json()
    assert done["status"] == "completed"
    assert done["result"]["value"] == {"result": "nice to meet you, Ada"}


# 1. The start event is the run's own.


class Enrol(StartEvent):
    course: str


class Enrolment(Workflow):
    """Waits for an answer in its entry step, so that a second start would show."""

    @step
    async def enrol(self, ev: Enrol, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(Answer, waiter_event=Question(key="name"))
        return StopEvent(result=f"{answer.response} takes {ev.course}")


@pytest.fixture
def enrol_url(serve: Callable[[WorkflowServer], str]) -> str:
    server = demo_server()
    server.add_workflow("enrol", Enrolment(), additional_events=[Answer])
    return serve(server)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "StartEvent", "value": {"name": "Mallory"}},
        {"qualified_name": "anyflow.events.StartEvent", "value": {}},
        {"type": "StopEvent", "value": {"result": "forged"}},
    ],
)
async def test_a_start_or_stop_event_cannot_be_sent_into_a_run(
    url: str, event: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await _waiting_run(http, "r")
        refused = await http.post("/events/r", json={"event": event})
        assert refused.status_code == 400, refused.text
        # The entry step did not run again, and the run goes on as it would have.
        await _answer_and_finish(http, "r")


async def test_the_workflows_own_start_event_cannot_be_sent_into_its_run(enrol_url: str) -> None:
    async with httpx.AsyncClient(base_url=enrol_url, timeout=30) as http:
        body = {"handler_id": "e", "start_event": {"course": "logic"}}
        assert (await http.post("/workflows/enrol/run-nowait", json=body)).status_code == 200
        forged = {"type": "Enrol", "value": {"course": "forgery"}}
        refused = await http.post("/events/e", json={"event": forged, "step": "enrol"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"] == (
            "Failed to deserialize event: "
            "the start event Enrol cannot be sent into a run: it starts one; send an "
            "event a step takes, or start a new run"
        )
        assert (await http.post("/events/e", json={"event": ANSWER})).status_code == 200
        with anyio.fail_after(30):
            await http.get("/events/e", params={"after_sequence": -1, "sse": "false"})
        done = (await http.get("/handlers/e")).json()
        assert done["result"]["value"] == {"result": "Ada takes logic"}


# 2. A web page must not drive the server.


@pytest.fixture
def guarded_urls(serve: Callable[[WorkflowServer], str]) -> tuple[str, str]:
    """A default server, and one that lists a UI's origin and a public host name."""
    listed = demo_server(cors_origins=["http://ui.example"], allowed_hosts=["runs.example.com"])
    return serve(demo_server()), serve(listed)


async def test_a_cross_site_post_is_refused_and_changes_nothing(
    guarded_urls: tuple[str, str],
) -> None:
    url, _ = guarded_urls
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await _waiting_run(http, "w")
        # What a page on another site can send without a CORS preflight.
        forms = [
            {"content": b'{"event": %s}' % str(ANSWER).encode(), "ctype": "text/plain"},
            {"content": b"event=x", "ctype": "application/x-www-form-urlencoded"},
        ]
        for form in forms:
            headers = {"Origin": EVIL, "Content-Type": form["ctype"]}
            refused = await http.post("/events/w", content=form["content"], headers=headers)
            assert refused.status_code == 403, refused.text
            assert "cors_origins" in refused.json()["detail"]
        # Even with a JSON type (a browser would have asked first), and with no body.
        assert (
            await http.post("/events/w", json={"event": ANSWER}, headers={"Origin": EVIL})
        ).status_code == 403
        assert (await http.post("/handlers/w/cancel", headers={"Origin": EVIL})).status_code == 403
        started = await http.post(
            "/workflows/greet/run", json={"handler_id": "x"}, headers={"Origin": "null"}
        )
        assert started.status_code == 403
        # Its body was never read: the answer says the connection ends with it.
        assert started.headers["connection"] == "close"
        assert (await http.get("/handlers/x")).status_code == 404
        assert (await http.get("/handlers/w")).json()["status"] == "running"
        await _answer_and_finish(http, "w")


async def test_a_body_must_say_it_is_json(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for ctype in (None, "text/plain", "multipart/form-data; boundary=x", "application/jsonx"):
            headers = {"Content-Type": ctype} if ctype else {}
            refused = await http.post("/workflows/greet/run", content=b"{}", headers=headers)
            assert refused.status_code == 415, (ctype, refused.text)
            assert "Content-Type: application/json" in refused.json()["detail"]
        for ctype in ("application/json", "Application/JSON; charset=utf-8", "application/x+json"):
            done = await http.post(
                "/workflows/greet/run", content=b"{}", headers={"Content-Type": ctype}
            )
            assert done.status_code == 200, (ctype, done.text)
        # A request without a body needs no type (the incumbent's client cancels so).
        await _waiting_run(http, "c")
        assert (await http.post("/handlers/c/cancel")).json() == {"status": "cancelled"}


async def test_the_servers_own_origin_and_listed_origins_may_post(
    guarded_urls: tuple[str, str],
) -> None:
    plain, listed = guarded_urls
    behind_tls = plain.replace("http://", "https://")  # a proxy that ends TLS
    pairs = [(plain, plain), (plain, behind_tls), (listed, listed), (listed, "http://ui.example")]
    for url, origin in pairs:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            done = await http.post("/workflows/greet/run", json={}, headers={"Origin": origin})
            assert done.status_code == 200, (url, origin, done.text)
    async with httpx.AsyncClient(base_url=plain, timeout=30) as http:
        other = await http.post("/workflows/greet/run", json={}, headers={"Origin": listed})
        assert other.status_code == 403  # another port is another origin


async def test_only_allowed_host_names_are_served(guarded_urls: tuple[str, str]) -> None:
    """DNS rebinding: a page whose name resolves to 127.0.0.1 still sends its name."""
    plain, listed = guarded_urls
    port = httpx.URL(plain).port
    async with httpx.AsyncClient(base_url=plain, timeout=30) as http:
        for host in (
            "evil.example",
            f"evil.example:{port}",
            "runs.example.com",
            "127.0.0.1.nip.io",
        ):
            refused = await http.get("/handlers", headers={"Host": host})
            assert refused.status_code == 400, host
            assert "allowed_hosts" in refused.json()["detail"]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST."):
            assert (await http.get("/handlers", headers={"Host": host})).status_code == 200, host
    listed_port = httpx.URL(listed).port
    async with httpx.AsyncClient(base_url=listed, timeout=30) as http:
        for host in ("runs.example.com", f"RUNS.example.com:{listed_port}"):
            assert (await http.get("/handlers", headers={"Host": host})).status_code == 200
        assert (await http.get("/handlers", headers={"Host": "evil.example"})).status_code == 400


def test_the_host_policy_reads_every_form_of_host() -> None:
    policy = HostPolicy(["Runs.Example.com", "10.0.0.5"])
    for host in ("runs.example.com", "runs.example.com:8443", "10.0.0.5:80", "[::1]:1", "::1"):
        assert policy.allows(host), host
    for host in ("example.com", "10.0.0.6", "[::2]:80", "runs.example.com.evil"):
        assert not policy.allows(host), host
    policy.listen_on("0.0.0.0")  # a wildcard names no host
    assert not policy.allows("0.0.0.0")
    policy.listen_on("192.168.1.7")
    assert policy.allows("192.168.1.7:8080")
    assert HostPolicy(["*"]).allows("anything.example")
    with pytest.raises(ValueError, match=r"^allowed_hosts takes host names .* not 'http://x'$"):
        HostPolicy(["http://x"])


def test_the_address_the_server_listens_on_is_served(backend_name: str) -> None:
    server = demo_server()
    with start_blocking_portal(backend=backend_name) as portal:
        serve = functools.partial(server.serve, host="127.0.0.2", port=0, handle_signals=False)
        future, url = portal.start_task(serve)
        try:
            assert httpx.get(f"{url}/handlers", timeout=30).status_code == 200
        finally:
            portal.call(server.stop)
            future.result(timeout=30)


async def test_the_inspector_cannot_be_framed_or_sniffed(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for path in ("/", "/static/inspector.js", "/static/inspector.css"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["x-content-type-options"] == "nosniff"
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy


# 3. The command line.


def _serve_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anyflow.server", f"{FLOWS}:Ask", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def _served(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    proc = _serve_process(*args, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on "), line
        yield line.split()[-1]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_non_loopback_address_needs_a_token() -> None:
    proc = _serve_process("--host", "0.0.0.0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "serving on" not in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: refusing to listen on 0.0.0.0 without a token: anyone who can reach it "
        "could start, read and cancel runs; pass --token (or set ANYFLOW_SERVER_TOKEN), "
        "or --insecure-no-token if that network is trusted"
    ]


def test_which_addresses_need_a_token() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"):
        assert exposure_problem(host, None, insecure=False) is None, host
    for host in ("0.0.0.0", "::", "10.0.0.5", "myhost.example"):
        assert exposure_problem(host, None, insecure=False) is not None, host
        assert exposure_problem(host, "t", insecure=False) is None
        assert exposure_problem(host, None, insecure=True) is None


def test_the_command_line_sets_the_token_origins_and_hosts() -> None:
    env = {"ANYFLOW_SERVER_TOKEN": "from-env"}
    options = ["--cors-origin", "http://ui.example", "--allowed-host", "runs.example.com"]
    with _served(*options, env=env) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/handlers").status_code == 401
        auth = {"Authorization": "Bearer from-env"}
        assert http.get("/handlers", headers=auth).status_code == 200
        listed = {**auth, "Host": "runs.example.com", "Origin": "http://ui.example"}
        assert http.post("/workflows/Ask/run-nowait", json={}, headers=listed).status_code == 200
        evil = {**auth, "Origin": EVIL}
        assert http.post("/workflows/Ask/run-nowait", json={}, headers=evil).status_code == 403
    with _served("--token", "flag", env=env) as url:
        # --token wins over the environment.
        auth = {"Authorization": "Bearer flag"}
        assert httpx.get(f"{url}/handlers", headers=auth, timeout=30).status_code == 200


def test_command_line_options_do_not_go_silently_to_a_server_target() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyflow.server", f"{FLOWS}:ask_server", "--token", "t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "error: --token cannot go to a function without those parameters" in err


# 4. Handler ids.


BAD_IDS = [
    "a/b",
    "../..",
    "..",
    ".hidden",
    "line\nbreak",
    "nul\x00byte",
    "x" * 129,
    "x" * 10_000,
    "space d",
    "caf\u00e9",
    "%2F",
    7,
    ["a"],
]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, serve: Callable[[WorkflowServer], str]
) -> Iterator[str]:
    """A demo server on a store of each kind (PostgreSQL when reachable)."""
    factory: Callable[[], Store]
    for factory in stores_of_kind(request.param, request, tmp_path):
        yield serve(demo_server(store=factory()))


async def test_a_handler_id_outside_the_alphabet_is_400_and_nothing_is_written(
    store_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=store_url, timeout=30) as http:
        for bad in BAD_IDS:
            for route in ("run", "run-nowait"):
                refused = await http.post(f"/workflows/greet/{route}", json={"handler_id": bad})
                assert refused.status_code == 400, (bad, refused.text)
                assert "A-Z a-z 0-9 . _ : -" in refused.json()["detail"]
        assert (await http.get("/handlers")).json()["handlers"] == []
        for good in ("a", "run-1.2:x_y", "-", "A" * 128, "0123456789abcdef"):
            done = await http.post("/workflows/greet/run", json={"handler_id": good})
            assert done.status_code == 200, (good, done.text)
            assert (await http.get(f"/handlers/{good}")).json()["handler_id"] == good
        # A lookup of an id no store can hold is a 404, not a store error.
        for path in ("/handlers/a%00b", "/results/a%00b", "/events/a%00b"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.post("/handlers/a%00b/cancel")).status_code == 404
        assert (await http.post("/events/a%00b", json={"event": ANSWER})).status_code == 404


# 5. A body must arrive in time.


def _scope(method: str, path: str) -> dict[str, Any]:
    """The ASGI scope of a JSON request of 100 bytes, as a server would make it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def test_a_body_that_never_arrives_whole_is_408_in_process() -> None:
    """The ASGI application, called with a receive that gives one chunk and
    then waits for an event that never comes."""
    app = demo_server(body_timeout=0.05).app
    never = anyio.Event()
    chunks = [{"type": "http.request", "body": b'{"event": ', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await never.wait()
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope("POST", "/events/h")
    with anyio.fail_after(30):
        await app(scope, receive, send)
    start = sent[0]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert b"body_timeout" in sent[1]["body"]


async def test_a_client_leaving_mid_body_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A client that closes its connection halfway through a request body is
    the client's doing: no traceback, no error line, and the run not started."""
    caplog.set_level(logging.DEBUG)
    server = demo_server()
    messages = [
        {"type": "http.disconnect"},
        {"type": "http.request", "body": b'{"start_event": ', "more_body": True},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop()

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope("POST", "/workflows/greet/run")
    async with server.contextmanager():
        with anyio.fail_after(30):
            await server.app(scope, receive, send)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=server.app), base_url="http://test"
        ) as http:
            assert (await http.get("/handlers")).json()["handlers"] == []
    assert sent[0]["status"] == 400
    # anyflow's loggers only: a full run's other tests leave threads that may log meanwhile.
    logged = [r for r in caplog.records if r.name.startswith("anyflow")]
    assert [r.getMessage() for r in logged if r.levelno >= logging.WARNING] == []


@pytest.fixture
def slow_body_url(serve: Callable[[WorkflowServer], str]) -> str:
    return serve(demo_server(body_timeout=0.2))


async def test_a_slow_body_gets_408_and_the_connection_is_closed(slow_body_url: str) -> None:
    address = httpx.URL(slow_body_url)
    assert address.port is not None
    head = (
        f"POST /workflows/greet/run HTTP/1.1\r\nHost: {address.host}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    async with await anyio.connect_tcp(address.host, address.port) as stream:
        await stream.send(head.encode() + b'{"start_event": ')
        answer = b""
        with anyio.fail_after(30):
            with contextlib.suppress(anyio.EndOfStream):
                while True:  # until the server closes the connection
                    answer += await stream.receive()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    async with httpx.AsyncClient(base_url=slow_body_url, timeout=30) as http:
        assert (await http.post("/workflows/greet/run", json={})).status_code == 200
