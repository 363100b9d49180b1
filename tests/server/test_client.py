"""``anyflow.client.WorkflowClient`` against a real server, on asyncio and trio.

Each test gets a fresh demo server (``url``) running in its own thread, and
talks to it as a user of the client would.  Nothing here waits on the clock:
a blocking ``run`` returns when the run ends, a stream ends at the run's last
event, a dropped connection is cut by an httpx transport at a chosen frame,
and an answer waits for a heartbeat the transport has seen.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import anyio
import attrs
import httpx
import pytest

from anyflow import StartEvent, StopEvent
from anyflow.client import (
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectionFailedError,
    EventEnvelope,
    Handler,
    NotFoundError,
    RunFailedError,
    UnknownEventError,
    WorkflowClient,
    WorkflowClientError,
)

from .conftest import demo_server
from .flows import Answer, Counted, CountStart, Progress, Question

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyflow.server import WorkflowServer


@pytest.fixture
async def client(url: str) -> AsyncIterator[WorkflowClient]:
    async with WorkflowClient(url) as client:
        yield client


async def collect(
    client: WorkflowClient, handler_id: str, after: int | Literal["now"] = -1
) -> list[EventEnvelope]:
    async with client.stream_events(handler_id, after=after) as stream:
        return [envelope async for envelope in stream]


# Describing the server.


async def test_the_server_describes_its_workflows(client: WorkflowClient) -> None:
    assert await client.health() is True
    assert await client.list_workflows() == ["greet", "count", "ask", "fail"]

    schema = await client.workflow_schema("count")
    assert schema.start["title"] == "CountStart"
    assert schema.start["required"] == ["count"]
    assert schema.stop["title"] == "Counted"

    titles = {event["title"] for event in await client.workflow_events("ask")}
    assert {"StartEvent", "Answer", "StopEvent"} <= titles

    graph = await client.workflow_graph("count")
    assert graph.name == "count"
    steps = [node["id"] for node in graph.nodes if node["node_type"] == "step"]
    assert steps == ["count"]
    assert {"source": "count", "target": "Counted", "label": None} in graph.edges


# Running.


async def test_a_blocking_run_returns_the_completed_handler_and_its_result(
    client: WorkflowClient,
) -> None:
    handler = await client.run("greet", name="Ada")

    assert handler.status == "completed"
    assert handler.is_done
    assert handler.workflow_name == "greet"
    assert handler.run_id == handler.handler_id
    assert handler.error is None
    assert isinstance(handler.started_at, datetime)
    assert handler.started_at.tzinfo is not None
    assert isinstance(handler.completed_at, datetime)
    assert handler.result is not None
    assert handler.result.type == "StopEvent"
    assert handler.result.value == {"result": "hello Ada"}
    assert handler.result.to_event() == StopEvent(result="hello Ada")
    assert await client.get_handler(handler.handler_id) == handler


async def test_a_start_event_is_given_as_an_event_or_as_keyword_fields(
    client: WorkflowClient,
) -> None:
    typed = await client.run("count", CountStart(count=2))
    plain = await client.run("count", StartEvent(count=1))  # type: ignore[call-arg]
    fields = await client.run("count", count=3, handler_id="counted-3")

    results = [h.result.to_event(Counted) for h in (typed, plain, fields) if h.result]
    assert results == [Counted(total=2), Counted(total=1), Counted(total=3)]
    assert fields.handler_id == "counted-3"
    with pytest.raises(TypeError, match=r"^pass the start event or its fields as keywords"):
        await client.run("count", CountStart(count=2), count=2)


async def test_a_failed_run_raises_with_its_handler(client: WorkflowClient) -> None:
    with pytest.raises(
        RunFailedError, match=r"^run '\w+' of 'fail' failed: Boom: the fuse"
    ) as info:
        await client.run("fail")

    handler = info.value.handler
    assert handler.status == "failed"
    assert handler.result is None
    assert handler.error is not None
    assert "the fuse was short" in handler.error
    assert "in step 'explode'" in handler.error
    # Reading it again gives the same failed handler (not an error).
    assert (await client.get_handler(handler.handler_id)).status == "failed"


# Streaming.


async def test_a_stream_gives_every_event_in_order_then_the_stop_event(
    client: WorkflowClient,
) -> None:
    handler = await client.run_nowait("count", count=4)
    assert handler.status == "running"

    async with client.stream_events(handler.handler_id) as stream:
        starts_after = stream.last_sequence
        events = [envelope async for envelope in stream]

    assert [e.type for e in events] == ["Progress"] * 4 + ["Counted"]
    # An event's sequence is its recorded position; one sent live, before its
    # step's batch is recorded, has none (and the stream says later where the
    # record stands).
    assert all(e.sequence in (None, n) for n, e in enumerate(events)), events
    assert (starts_after, stream.last_sequence) == (-1, 4)
    assert [e.to_event(Progress) for e in events[:-1]] == [
        Progress(step="count", n=n) for n in range(4)
    ]
    stop = events[-1]
    assert stop.is_terminal
    assert stop.types == ("StopEvent",)
    assert stop.qualified_name == "tests.server.flows.Counted"
    assert stop.to_event(Counted) == Counted(total=4)
    with pytest.raises(
        UnknownEventError, match=r"^no class for event type 'Counted' among Progress;"
    ):
        stop.to_event(Progress)


async def test_a_stream_goes_on_from_a_sequence_without_a_gap_or_a_duplicate(
    client: WorkflowClient,
) -> None:
    # Finished, so every frame has its recorded id (an event sent live, before
    # its step's batch is recorded, comes without one).
    handler = await client.run("count", count=5)

    first: list[EventEnvelope] = []
    async with client.stream_events(handler.handler_id) as stream:
        async for envelope in stream:
            first.append(envelope)
            if len(first) == 3:
                break
    assert stream.last_sequence == 2

    rest = await collect(client, handler.handler_id, after=stream.last_sequence)

    assert [e.sequence for e in first + rest] == [0, 1, 2, 3, 4, 5]
    assert [e.type for e in first + rest] == ["Progress"] * 5 + ["Counted"]
    # After the last event of a finished run there is nothing more.
    assert await collect(client, handler.handler_id, after=5) == []
    assert await collect(client, handler.handler_id, after="now") == []


class _CutAfterOneFrame(httpx.AsyncByteStream):
    """A response body that passes on its first frame, then fails as a dropped
    connection would (after reading the rest, so the real body is finished)."""

    def __init__(self, body: httpx.AsyncByteStream) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = b""
        async for chunk in self._body:
            received += chunk
        yield received[: received.index(b"\n\n") + 2]
        raise httpx.ReadError("the test cut the connection")

    async def aclose(self) -> None:
        await self._body.aclose()


class CutFirstStream(httpx.AsyncBaseTransport):
    """The real network, except that the first event stream breaks after one event."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self.streams: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._network.handle_async_request(request)
        if request.method == "GET" and request.url.path.startswith("/events/"):
            self.streams.append(request)
            if len(self.streams) == 1:
                assert isinstance(response.stream, httpx.AsyncByteStream)
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    stream=_CutAfterOneFrame(response.stream),
                    extensions=response.extensions,
                )
        return response

    async def aclose(self) -> None:
        await self._network.aclose()


async def test_a_dropped_stream_reconnects_from_the_last_event(url: str) -> None:
    transport = CutFirstStream()
    async with httpx.AsyncClient(transport=transport) as http:
        async with WorkflowClient(url, httpx_client=http) as client:
            # Finished, so every frame has its recorded id (an event sent live,
            # before its step's batch is recorded, comes without one).
            handler = await client.run("count", count=3)
            async with client.stream_events(handler.handler_id, reconnect_delay=0) as stream:
                events = [envelope async for envelope in stream]
        assert not http.is_closed  # the caller's client stays the caller's

    assert [e.sequence for e in events] == [0, 1, 2, 3]
    assert [e.type for e in events] == ["Progress", "Progress", "Progress", "Counted"]
    first, second = transport.streams
    assert first.url.params["after_sequence"] == "-1"
    assert second.url.params["after_sequence"] == "0"
    assert second.headers["last-event-id"] == "0"


async def test_a_stream_that_keeps_failing_gives_up_and_says_where_to_go_on(url: str) -> None:
    class Unreachable(CutFirstStream):
        """After the first (cut) stream, no stream connects at all."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if self.streams and request.url.path.startswith("/events/"):
                raise httpx.ConnectError("the test refused the connection", request=request)
            return await super().handle_async_request(request)

    async with (
        httpx.AsyncClient(transport=Unreachable()) as http,
        WorkflowClient(url, httpx_client=http) as client,
    ):
        handler = await client.run("count", count=3)  # finished: every frame with its id
        received = []

        async def follow() -> None:
            stream = client.stream_events(handler.handler_id, max_reconnects=2, reconnect_delay=0)
            async for envelope in stream:
                received.append(envelope.sequence)

        with pytest.raises(ConnectionFailedError, match=r"failed 3 times in a row") as info:
            await follow()

    assert received == [0]
    assert isinstance(info.value, ConnectionError)
    assert info.value.status is None
    assert "ConnectError: the test refused the connection" in str(info.value)
    assert str(info.value).endswith("it can go on with stream_events(..., after=0)")


class _Watched(httpx.AsyncByteStream):
    def __init__(self, body: httpx.AsyncByteStream, seen: Callable[[bytes], None]) -> None:
        self._body = body
        self._seen = seen

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            self._seen(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._body.aclose()


class WatchHeartbeats(httpx.AsyncBaseTransport):
    """The real network; ``heartbeat`` is set once a stream has carried one."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self.heartbeat = anyio.Event()

    def _seen(self, chunk: bytes) -> None:
        if b": heartbeat" in chunk:
            self.heartbeat.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._network.handle_async_request(request)
        if request.method == "GET" and request.url.path.startswith("/events/"):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=_Watched(response.stream, self._seen),
                extensions=response.extensions,
            )
        return response

    async def aclose(self) -> None:
        await self._network.aclose()


@pytest.fixture
def url_with_heartbeats(serve: Callable[[WorkflowServer], str]) -> str:
    return serve(demo_server(heartbeat=0.01))


async def test_a_stream_skips_the_heartbeats_of_an_idle_run(url_with_heartbeats: str) -> None:
    transport = WatchHeartbeats()
    async with (
        httpx.AsyncClient(transport=transport) as http,
        WorkflowClient(url_with_heartbeats, httpx_client=http) as client,
    ):
        handler = await client.run_nowait("ask")

        async def answer_after_a_heartbeat() -> None:
            await transport.heartbeat.wait()
            await client.send_event(handler.handler_id, Answer(key="name", response="Ada"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_after_a_heartbeat)
            events = await collect(client, handler.handler_id)

    assert transport.heartbeat.is_set()
    assert [(e.sequence, e.type) for e in events] == [(0, "Question"), (1, "StopEvent")]


# Human in the loop, waiting and cancelling.


async def test_a_run_asks_a_question_and_finishes_with_the_answer(client: WorkflowClient) -> None:
    handler = await client.run_nowait("ask")

    async with client.stream_events(handler.handler_id) as stream:
        async for envelope in stream:
            if envelope.is_a("InputRequiredEvent"):
                question = envelope.to_event(Question)
                assert question == Question(key="name", prefix="Who are you?")
                await client.send_event(handler.handler_id, Answer(key="name", response="Ada"))
    assert envelope.is_terminal

    done = await client.wait_for_handler(handler.handler_id)
    assert done.status == "completed"
    assert done.result is not None
    assert done.result.to_event(StopEvent).result == "nice to meet you, Ada"


async def test_waiting_for_a_run_ends_at_its_timeout(client: WorkflowClient) -> None:
    handler = await client.run_nowait("ask")
    with pytest.raises(TimeoutError, match=r"^handler '\w+' is still running after 0s$"):
        await client.wait_for_handler(handler.handler_id, timeout=0)
    assert (await client.get_handler(handler.handler_id)).status == "running"


async def test_a_cancelled_run_says_so(client: WorkflowClient) -> None:
    handler = await client.run_nowait("ask")

    assert await client.cancel(handler.handler_id) == "cancelled"

    cancelled = await client.get_handler(handler.handler_id)
    assert cancelled.status == "cancelled"
    assert cancelled.result is None
    assert await client.wait_for_handler(handler.handler_id) == cancelled
    with pytest.raises(ConflictError, match=r"has finished \(cancelled\); pass purge=true"):
        await client.cancel(handler.handler_id)


async def test_a_purged_run_is_gone(client: WorkflowClient) -> None:
    handler = await client.run_nowait("ask")

    assert await client.cancel(handler.handler_id, purge=True) == "deleted"

    with pytest.raises(NotFoundError, match=rf"^no handler '{handler.handler_id}'"):
        await client.get_handler(handler.handler_id)


async def test_handlers_are_listed_by_status_and_workflow(client: WorkflowClient) -> None:
    greeted = await client.run("greet")
    with pytest.raises(RunFailedError) as info:
        await client.run("fail")
    failed = info.value.handler
    asking = await client.run_nowait("ask")

    async def ids(**filters: object) -> set[str]:
        handlers: list[Handler] = await client.list_handlers(**filters)  # type: ignore[arg-type]
        return {h.handler_id for h in handlers}

    everyone = {greeted.handler_id, failed.handler_id, asking.handler_id}
    assert await ids() == everyone
    assert await ids(status="running") == {asking.handler_id}
    assert await ids(status=["completed", "failed"]) == {greeted.handler_id, failed.handler_id}
    assert await ids(workflow_name="greet") == {greeted.handler_id}
    assert await ids(workflow_name=["greet", "ask"], status="running") == {asking.handler_id}
    with pytest.raises(BadRequestError, match=r"^unknown status lost; use running, completed"):
        await ids(status="lost")


# Mistakes, and what they say.


async def test_an_unknown_workflow_or_handler_is_not_found(client: WorkflowClient) -> None:
    with pytest.raises(
        NotFoundError, match=r"^Workflow not found: no workflow 'nope' is served here"
    ) as info:
        await client.run("nope")
    assert info.value.status == 404
    assert "(HTTP 404 from POST /workflows/nope/run)" in str(info.value)
    assert isinstance(info.value, LookupError)

    with pytest.raises(NotFoundError, match=r"^no handler 'nobody'"):
        await client.get_handler("nobody")
    with pytest.raises(NotFoundError, match=r"^no handler 'nobody'"):
        await collect(client, "nobody")
    with pytest.raises(NotFoundError, match=r"^Workflow not found: no workflow 'nope'"):
        await client.workflow_schema("nope")


async def test_an_event_the_run_cannot_take_is_a_bad_request(client: WorkflowClient) -> None:
    handler = await client.run_nowait("ask")

    with pytest.raises(
        BadRequestError,
        match=r"^Failed to deserialize event: unknown event type 'Nope'; this workflow takes: ",
    ):
        await client.send_event(handler.handler_id, {"type": "Nope", "value": {}})
    with pytest.raises(
        BadRequestError, match=r"^Validation error for .start_event.: cannot rebuild CountStart"
    ):
        await client.run("count", cont=3)


async def test_an_event_for_a_finished_run_is_a_conflict(client: WorkflowClient) -> None:
    handler = await client.run("greet")

    with pytest.raises(
        ConflictError,
        match=r"^Workflow already completed: handler '\w+' has finished \(completed\)",
    ) as info:
        await client.send_event(handler.handler_id, Answer(key="name", response="late"))
    assert info.value.status == 409


async def test_a_handler_id_names_one_run_only(client: WorkflowClient) -> None:
    await client.run("greet", handler_id="greeting")

    with pytest.raises(
        ConflictError, match=r"^handler id 'greeting' already names a completed run"
    ):
        await client.run_nowait("greet", handler_id="greeting")


@pytest.fixture
def url_with_token(serve: Callable[[WorkflowServer], str]) -> str:
    # A sync fixture: serve() blocks its thread until the server is up, so it
    # cannot be called from inside an async test.
    return serve(demo_server(token="s3cret"))


async def test_a_server_with_a_token_needs_it(url_with_token: str) -> None:
    url = url_with_token
    async with WorkflowClient(url) as anonymous:
        assert await anonymous.health() is True  # a probe needs no token
        with pytest.raises(AuthError, match=r"^this server needs a token") as info:
            await anonymous.list_workflows()
        assert info.value.status == 401
    async with WorkflowClient(url, token="wrong") as wrong:
        with pytest.raises(AuthError):
            await wrong.run("greet")

    async with WorkflowClient(url, token="s3cret") as client:
        handler = await client.run_nowait("count", count=1)
        events = await collect(client, handler.handler_id)
        assert [e.type for e in events] == ["Progress", "Counted"]


async def test_a_frame_that_is_not_json_is_an_error_whose_cause_says_where() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = b'id: 0\ndata: {"type": "Progress", "value": {\n\n'
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))

    async def read_all() -> None:
        async with client.stream_events("h1") as stream:
            async for _ in stream:
                pass

    async with WorkflowClient("http://test", httpx_client=http) as client:
        with pytest.raises(
            WorkflowClientError, match=r"^the stream sent a frame that is not JSON: "
        ) as caught:
            await read_all()
    await http.aclose()
    assert isinstance(caught.value.__cause__, ValueError)


# Answers from a server of another version.


def _answering(answers: dict[str, object]) -> httpx.AsyncClient:
    """An httpx client whose server answers each path with its JSON."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = answers[request.url.path]
        if isinstance(body, bytes):  # a stream
            return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_an_answer_that_does_not_fit_is_an_error_naming_its_path() -> None:
    running = {"handler_id": "h1", "workflow_name": "ask", "status": "running"}
    http = _answering(
        {
            "/handlers/h1": {**running, "started_at": "yesterday"},
            "/handlers": {"handlers": [running, {**running, "status": "lost"}]},
            "/events/h1": b'id: 0\ndata: {"value": {"n": 1}}\n\n',
            "/workflows/ask/representation": {"graph": {"name": "ask", "nodes": [["x"]]}},
        }
    )
    async with WorkflowClient("http://test", httpx_client=http) as client:
        with pytest.raises(
            WorkflowClientError,
            match=r"^the server sent a handler this client cannot read: \$\.started_at must "
            r"be an ISO 8601 time, not 'yesterday' \(the answer: \{'handler_id': 'h1', ",
        ) as caught:
            await client.get_handler("h1")
        assert isinstance(caught.value.__cause__, ValueError)  # the converter's error
        with pytest.raises(
            WorkflowClientError,
            match=r"cannot read: \$\.handlers\[1\]\.status is 'lost', not one of running, ",
        ):
            await client.list_handlers()
        with pytest.raises(
            WorkflowClientError,
            match=r"^the server sent an event envelope this client cannot read: missing \$\.type",
        ):
            await collect(client, "h1")
        with pytest.raises(
            WorkflowClientError,
            match=r"cannot read: \$\.graph\.nodes\[0\] must be an object, not \['x'\]",
        ):
            await client.workflow_graph("ask")
    await http.aclose()


async def test_keys_a_newer_server_adds_are_dropped_and_absent_ones_read_as_none() -> None:
    envelope = {"type": "StopEvent", "value": {"result": 1}, "types": None, "colour": "red"}
    finished = {
        "handler_id": "h1",
        "workflow_name": "greet",
        "status": "completed",
        "result": envelope,
        "result_unreadable": False,
        "priority": 3,
    }
    http = _answering(
        {
            "/handlers/h1": finished,
            "/events/h1": b"id: 7\ndata: " + json.dumps(envelope).encode() + b"\n\n",
        }
    )
    async with WorkflowClient("http://test", httpx_client=http) as client:
        handler = await client.get_handler("h1")
        (streamed,) = await collect(client, "h1")

    await http.aclose()
    expected = EventEnvelope(type="StopEvent", value={"result": 1})
    assert handler == Handler(
        handler_id="h1", workflow_name="greet", status="completed", result=expected
    )
    assert streamed == attrs.evolve(expected, sequence=7)
    assert handler.result is not None
    assert handler.result.to_event() == StopEvent(result=1)
