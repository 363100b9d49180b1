"""Live event streams with a durable store, on asyncio and trio.

An event a step writes to the stream reaches an SSE client while the step
still runs (before its tick batch is recorded), without an ``id``; once the
batch is recorded an ``id``-only frame says so; a stream opened later (a
reconnection) replays the recorded stream with every id, no gap and no
duplicate.  The server runs in the test's own event loop, so a step can wait
on an ``anyio.Event`` the test sets: nothing here waits on the clock.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.client import WorkflowClient
from anyflow.durable import (
    Committed,
    DurableRuntime,
    LiveEvent,
    SqliteStore,
    StoreDecorator,
    StoredEvent,
)
from anyflow.errors import StoreUnavailableError
from anyflow.server import WorkflowServer

from ..conftest import stores_of_kind
from .flows import Answer, Ask

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from anyflow.durable import RunRecord, Store


class Token(Event):
    text: str


class Gated(Workflow):
    """Writes a token to the stream, then waits for the test's gate."""

    gate: anyio.Event

    @step
    async def speak(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Token(text="hel"))
        await self.gate.wait()
        ctx.write_event_to_stream(Token(text="lo"))
        return StopEvent(result="hello")


class Chatty(Workflow):
    """Writes a token, waits for the gate (its client leaves meanwhile), then
    writes 200 more, letting the stream send each on its own."""

    gate: anyio.Event

    @step
    async def speak(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Token(text="first"))
        await self.gate.wait()
        for i in range(200):
            ctx.write_event_to_stream(Token(text=str(i)))
            await anyio.lowlevel.checkpoint()
        return StopEvent(result="done")


def gated(cls: type[Workflow]) -> Any:
    workflow: Any = cls()
    workflow.gate = anyio.Event()
    return workflow


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any, Any]]:
    """A server on a SQLite store, in this test's event loop: its URL and workflows."""
    server = WorkflowServer(SqliteStore(tmp_path / "runs.db"))
    flow, chatty = gated(Gated), gated(Chatty)
    server.add_workflow("gated", flow)
    server.add_workflow("chatty", chatty)
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(server.serve, port=0, handle_signals=False))
        try:
            yield url, flow, chatty
        finally:
            flow.gate.set()
            chatty.gate.set()
            server.stop()


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """SSE frames as ``{"id": ..., "data": ...}`` (comments skipped)."""
    frame: dict[str, Any] = {}
    async for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")


async def test_a_streamed_event_reaches_the_client_while_its_step_runs(
    served: tuple[str, Any, Any],
) -> None:
    url, flow, _ = served
    async with httpx.AsyncClient(base_url=url, timeout=None) as http:
        started = await http.post("/workflows/gated/run-nowait", json={})
        handler_id = started.json()["handler_id"]
        # A safety net: before live streams, the first frame came only after the gate.
        with anyio.fail_after(30):
            async with http.stream("GET", f"/events/{handler_id}?after_sequence=-1") as response:
                stream = frames(response.aiter_lines())
                first = await stream.__anext__()
                # The step still waits on the gate: the token is live, not recorded.
                assert not flow.gate.is_set()
                assert "id" not in first
                assert json.loads(first["data"])["value"] == {"text": "hel"}
                flow.gate.set()
                rest = [frame async for frame in stream]
        # The rest: the second token, and the StopEvent, recorded, last (its id
        # says that all before it is recorded); maybe id-only frames between.
        data = [json.loads(f["data"]) for f in rest if "data" in f]
        assert [(d["type"], d["value"]) for d in data] == [
            ("Token", {"text": "lo"}),
            ("StopEvent", {"result": "hello"}),
        ]
        assert rest[-1]["id"] == "2"
        ids = [int(f["id"]) for f in rest if "id" in f]
        assert ids == sorted(set(ids))

        # A reconnection replays the recorded stream: every event once, with its id.
        async with http.stream("GET", f"/events/{handler_id}?after_sequence=-1") as response:
            replayed = [frame async for frame in frames(response.aiter_lines())]
        assert [f["id"] for f in replayed] == ["0", "1", "2"]
        assert [json.loads(f["data"])["type"] for f in replayed] == ["Token", "Token", "StopEvent"]


async def test_a_reconnecting_client_goes_on_from_the_last_recorded_event(
    served: tuple[str, Any, Any],
) -> None:
    url, flow, _ = served
    async with WorkflowClient(url) as client:
        handler = await client.run_nowait("gated")
        with anyio.fail_after(30):
            async with client.stream_events(handler.handler_id) as stream:
                first = await stream.__anext__()
                assert first.sequence is None  # live: its step's batch is not recorded
                assert first.value == {"text": "hel"}
                assert stream.last_sequence == -1  # nothing recorded seen yet
                flow.gate.set()
                rest = [envelope async for envelope in stream]
            assert rest[-1].type == "StopEvent"
            assert rest[-1].sequence == 2
            # Reconnecting from any recorded position: the recorded events after it.
            async with client.stream_events(handler.handler_id, after=0) as stream:
                after_first = [(e.sequence, e.value) async for e in stream]
        assert after_first[0] == (1, {"text": "lo"})
        assert [s for s, _ in after_first] == [1, 2]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One store of each kind (PostgreSQL's tests skip if it cannot be reached)."""
    for make in stores_of_kind(request.param, request, tmp_path):
        yield make()


async def test_live_events_of_a_durable_run_come_before_their_batch_is_recorded(
    store: Store,
) -> None:
    flow = gated(Gated)
    async with DurableRuntime(store) as runtime:
        handler = flow.run(run_id="r1", runtime=runtime)
        await handler.wait_recorded()
        reader = runtime.live_events("r1")
        with anyio.fail_after(30):
            batch = await reader.next_batch()
            assert batch == [LiveEvent(0, Token(text="hel"))]
            assert await store.read_events("r1") == []  # not recorded yet
            flow.gate.set()
            items = [item async for item in reader]
        assert await handler == "hello"
    # The first token is confirmed (as recorded) before or with what follows.
    recorded = [i.seq for i in items if isinstance(i, Committed | StoredEvent)]
    assert recorded == sorted(set(recorded))
    assert recorded[-1] == 2
    assert isinstance(items[-1], StoredEvent)
    assert isinstance(items[-1].event, StopEvent)
    positions = {i.seq for i in items if not isinstance(i, Committed)}
    assert positions == {1, 2}


async def test_a_live_event_whose_batch_was_never_recorded_is_not_replayed(
    store: Store,
) -> None:
    """The process stops while the step waits: its token was live and is not
    in the record; the run, resumed, writes it again once (no duplicate)."""
    flow = gated(Gated)
    async with DurableRuntime(store) as runtime:
        flow.run(run_id="r1", runtime=runtime)
        with anyio.fail_after(30):
            assert await runtime.live_events("r1").next_batch() == [LiveEvent(0, Token(text="hel"))]
    assert await store.read_events("r1") == []
    again = gated(Gated)
    again.gate.set()
    async with DurableRuntime(store) as runtime:
        assert await again.run(run_id="r1", runtime=runtime) == "hello"
        replay = [item async for item in runtime.live_events("r1")]
    assert [(i.seq, type(i.event).__name__) for i in replay] == [  # type: ignore[union-attr]
        (0, "Token"),
        (1, "Token"),
        (2, "StopEvent"),
    ]
    assert all(isinstance(i, StoredEvent) for i in replay)


async def test_a_client_that_leaves_mid_stream_is_one_log_line_at_most(
    served: tuple[str, Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    url, _, chatty = served
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(base_url=url, timeout=None) as http:
        started = await http.post("/workflows/chatty/run-nowait", json={})
        handler_id = started.json()["handler_id"]
        caplog.clear()  # the server's start
        with anyio.fail_after(30):
            # A raw connection, closed once the first event frame has arrived.
            host, port = url.removeprefix("http://").rsplit(":", 1)
            async with await anyio.connect_tcp(host, int(port)) as sock:
                path = f"/events/{handler_id}?after_sequence=-1"
                await sock.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                received = b""
                while b"data:" not in received:
                    received += await sock.receive()
            chatty.gate.set()  # 200 more events, sent one by one to a closed socket
            # The run goes on to its end without the client.
            async with http.stream("GET", path) as response:
                frames = [line async for line in response.aiter_lines() if line.startswith("data:")]
            assert len(frames) == 202
    server_side = [
        r
        for r in caplog.records
        if r.name.split(".")[0] in ("anyflow", "hypercorn")
        or (
            r.name == "asyncio"
            and r.levelno >= logging.WARNING
            # debug mode's slow-callback timing on a loaded machine, not the server
            and not r.getMessage().startswith("Executing ")
        )
    ]
    # Quiet at INFO (asyncio warned of each write to the closed socket, one
    # per event); at most one line (at DEBUG) for the disconnection.
    assert [r.getMessage() for r in server_side if r.levelno >= logging.INFO] == []
    left = [r for r in server_side if "left" in r.getMessage()]
    assert len(left) <= 1, [r.getMessage() for r in left]


class Chunky(Workflow):
    """Writes 3,000 events in one step (recorded with its result), then, in a
    second step, 3,000 more before it waits for the gate (not recorded yet)."""

    gate: anyio.Event

    @step
    async def first(self, ev: StartEvent, ctx: Context) -> Token:
        for i in range(3000):
            ctx.write_event_to_stream(Token(text=str(i)))
        return Token(text="next")

    @step
    async def second(self, ev: Token, ctx: Context) -> StopEvent:
        for i in range(3000, 6000):
            ctx.write_event_to_stream(Token(text=str(i)))
        await self.gate.wait()
        return StopEvent(result="done")


async def test_readers_that_lag_behind_the_live_feed_miss_nothing(store: Store) -> None:
    flow = gated(Chunky)
    async with DurableRuntime(store) as runtime:
        flow.run(run_id="r1", runtime=runtime)
        early = runtime.live_events("r1")
        with anyio.fail_after(30):
            seen: list[Any] = []
            while len([i for i in seen if not isinstance(i, Committed)]) < 6000:
                seen += await early.next_batch()
            # A reader that starts now: the first step's events are older than
            # the feed keeps, so they come from the store; then the live ones.
            late = [
                item
                for item in await _read_until(runtime.live_events("r1"), 6000)
                if not isinstance(item, Committed)
            ]
            flow.gate.set()
            rest = [item async for item in early]
    for items in (seen, late):
        events = [i for i in items if not isinstance(i, Committed)]
        assert [i.seq for i in events] == list(range(6000))
        assert [i.event.text for i in events] == [str(n) for n in range(6000)]
        assert all(isinstance(i, LiveEvent) for i in events[3000:])
    # The early reader saw the first step's events live, then their recording;
    # the late one reads them as recorded.
    assert all(isinstance(i, StoredEvent) for i in late[:3000])
    assert max(i.seq for i in seen if not isinstance(i, LiveEvent)) >= 2999
    assert isinstance(rest[-1], StoredEvent)
    assert rest[-1].seq == 6000


async def _read_until(reader: Any, count: int) -> list[Any]:
    items: list[Any] = []
    while len([i for i in items if not isinstance(i, Committed)]) < count:
        items += await reader.next_batch()
    return items


class _FailingReads(StoreDecorator):
    """A store whose reads raise ``StoreUnavailableError`` while ``failing``;
    ``failures`` counts them (an event per failure, for the test to wait on)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.failing = False
        self.failures: list[anyio.Event] = [anyio.Event() for _ in range(3)]
        self.count = 0

    def _check(self) -> None:
        if self.failing:
            if self.count < len(self.failures):
                self.failures[self.count].set()
            self.count += 1
            raise StoreUnavailableError("reads fail (the test's store)")

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        self._check()
        return await self.inner.read_events(run_id, after, limit)

    async def get_run(self, run_id: str) -> RunRecord | None:
        self._check()
        return await self.inner.get_run(run_id)


ANSWER = {"event": {"type": "Answer", "value": {"key": "name", "response": "Ada"}}}


@contextlib.asynccontextmanager
async def _executing_and_streaming(
    tmp_path: Path,
) -> AsyncIterator[tuple[_FailingReads, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two servers on one SQLite file: the first executes the ``ask`` runs,
    the second reads them back through a store whose reads the test makes
    fail; a client of each."""
    db = tmp_path / "runs.db"
    executing = WorkflowServer(SqliteStore(db))
    executing.add_workflow("ask", Ask(), additional_events=[Answer])
    store = _FailingReads(SqliteStore(db))
    streaming = WorkflowServer(store, poll_interval=0.01, store_retry=0.01)
    streaming.add_workflow("ask", Ask(), additional_events=[Answer])
    async with anyio.create_task_group() as tg:
        start = functools.partial(WorkflowServer.serve, port=0, handle_signals=False)
        one = await tg.start(start, executing)
        two = await tg.start(start, streaming)
        try:
            async with (
                httpx.AsyncClient(base_url=one, timeout=None) as http_one,
                httpx.AsyncClient(base_url=two, timeout=None) as http_two,
            ):
                yield store, http_one, http_two
        finally:
            executing.stop()
            streaming.stop()


async def test_a_stream_goes_on_when_its_store_fails_to_read_and_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server streams a run that another server (on the same SQLite file)
    executes, so it reads the run's events from the store; those reads start
    to fail mid-stream.  The stream neither breaks nor ends: the failure is
    one warning (not a traceback), the stream is opened again after the last
    recorded event it sent once the store answers, and goes on to the run's
    end with every recorded event once.  (It used to end the response with an
    unhandled exception: a broken chunked body for the client.)"""
    async with _executing_and_streaming(tmp_path) as (store, http_one, http_two):
        started = await http_one.post("/workflows/ask/run-nowait", json={})
        handler_id = started.json()["handler_id"]
        with anyio.fail_after(30):
            path = f"/events/{handler_id}?after_sequence=-1"
            async with http_two.stream("GET", path) as response:
                assert response.status_code == 200
                stream = frames(response.aiter_lines())
                first = await stream.__anext__()
                caplog.clear()
                store.failing = True
                await store.failures[0].wait()
                sent = await http_one.post(f"/events/{handler_id}", json=ANSWER)
                assert sent.json() == {"status": "sent"}
                await store.failures[1].wait()  # a second try failed too
                store.failing = False
                rest = [frame async for frame in stream]
    assert first["id"] == "0"
    assert json.loads(first["data"])["type"] == "Question"
    # After the failure: from the last recorded event sent, the rest once.
    assert [(f.get("id"), json.loads(f["data"])["type"]) for f in rest if "data" in f] == [
        ("1", "StopEvent")
    ]
    warnings = [r.getMessage() for r in caplog.records if r.name == "anyflow.server"]
    assert "the store failed: reads fail (the test's store)" in warnings
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_stream_from_now_whose_store_fails_before_it_sent_an_event_goes_on_from_then(
    tmp_path: Path,
) -> None:
    """As above, but the stream is opened for what comes from now on, and the
    store's reads fail before it sent an event; the run records its last
    event meanwhile.  The stream opened again goes on from the position now
    had when it was opened, so that event comes.  (It was opened again from
    a new now, after the event: it ended without sending it.)  The stream
    says that position at once, as an id-only frame, so a client that leaves
    before any event reconnects from it (an EventSource's Last-Event-ID)."""
    async with _executing_and_streaming(tmp_path) as (store, http_one, http_two):
        started = await http_one.post("/workflows/ask/run-nowait", json={})
        handler_id = started.json()["handler_id"]
        with anyio.fail_after(30):
            # The question is recorded once the streaming server reads it.
            path = f"/events/{handler_id}?after_sequence=-1"
            async with http_two.stream("GET", path) as whole:
                stream = frames(whole.aiter_lines())
                question = await stream.__anext__()
                path = f"/events/{handler_id}?after_sequence=now"
                async with http_two.stream("GET", path) as response:
                    assert response.status_code == 200
                    now = frames(response.aiter_lines())
                    opened = await now.__anext__()  # sent as it opens
                    store.failing = True
                    await store.failures[0].wait()
                    sent = await http_one.post(f"/events/{handler_id}", json=ANSWER)
                    assert sent.json() == {"status": "sent"}
                    # The run's end is recorded (its stream ends after it).
                    path = f"/events/{handler_id}?after_sequence=0"
                    async with http_one.stream("GET", path) as ending:
                        _ = [frame async for frame in frames(ending.aiter_lines())]
                    store.failing = False
                    rest = [frame async for frame in now]
                _ = [frame async for frame in stream]
            # A client that left after the first frame comes back with its id.
            again = await http_two.get(
                f"/events/{handler_id}", headers={"Last-Event-ID": opened["id"]}
            )
    assert (question["id"], json.loads(question["data"])["type"]) == ("0", "Question")
    assert opened == {"id": "0"}  # the last recorded position when it opened
    assert [(f.get("id"), json.loads(f["data"])["type"]) for f in rest if "data" in f] == [
        ("1", "StopEvent")
    ]
    replayed = [f async for f in frames(_lines(again.text))]
    assert [(f["id"], json.loads(f["data"])["type"]) for f in replayed] == [("1", "StopEvent")]


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def test_a_stream_from_now_of_a_run_executed_here_opens_with_its_position() -> None:
    """A stream opened from now on a run this server executes opens with the
    id-only frame of the last recorded position, as one whose position is
    read from the store does, and before anything else comes: a client that
    reconnects before any event goes on from there."""
    server = WorkflowServer()
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(server.serve, port=0, handle_signals=False))
        try:
            async with httpx.AsyncClient(base_url=url, timeout=None) as http:
                started = await http.post("/workflows/ask/run-nowait", json={})
                handler_id = started.json()["handler_id"]
                with anyio.fail_after(30):
                    path = f"/events/{handler_id}?after_sequence=-1"
                    async with http.stream("GET", path) as whole:
                        stream = frames(whole.aiter_lines())
                        question = await stream.__anext__()  # recorded: it has its id
                        path = f"/events/{handler_id}?after_sequence=now"
                        async with http.stream("GET", path) as response:
                            now = frames(response.aiter_lines())
                            opened = await now.__anext__()  # before the run goes on
                            sent = await http.post(f"/events/{handler_id}", json=ANSWER)
                            assert sent.json() == {"status": "sent"}
                            rest = [frame async for frame in now]
                        _ = [frame async for frame in stream]
                    again = await http.get(
                        f"/events/{handler_id}", headers={"Last-Event-ID": opened["id"]}
                    )
        finally:
            server.stop()
    assert (question["id"], json.loads(question["data"])["type"]) == ("0", "Question")
    assert opened == {"id": "0"}
    assert [(f.get("id"), json.loads(f["data"])["type"]) for f in rest if "data" in f] == [
        ("1", "StopEvent")
    ]
    replayed = [f async for f in frames(_lines(again.text))]
    assert [(f["id"], json.loads(f["data"])["type"]) for f in replayed] == [("1", "StopEvent")]
