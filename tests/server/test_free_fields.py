"""Free fields (keywords an event class does not declare) through the server:
sent in a start body and with an event, recorded in a SQLite journal, streamed
over SSE and read back by ``anyflow.client``, as they went in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.client import WorkflowClient
from anyflow.durable import SqliteStore
from anyflow.server import WorkflowServer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class Quoted(Event):
    total: int


class Quote(Workflow):
    @step
    async def quote(self, ev: StartEvent, ctx: Context) -> StopEvent:
        total = sum(ev.items)
        ctx.write_event_to_stream(Quoted(total=total, currency=ev.currency))  # type: ignore[call-arg]
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="book?", total=total)
        )
        return StopEvent(result=answer.response, by=answer.by, currency=ev.currency)


@pytest.fixture
def url(serve: Callable[[WorkflowServer], str], tmp_path: Path) -> str:
    server = WorkflowServer(SqliteStore(tmp_path / "runs.db"))
    server.add_workflow("quote", Quote())
    return serve(server)


async def test_free_fields_round_trip_through_the_server_and_the_client(url: str) -> None:
    async with WorkflowClient(url) as client:
        handler = await client.run_nowait("quote", items=[40, 60], currency="EUR")
        async with client.stream_events(handler.handler_id) as stream:
            envelopes = []
            async for envelope in stream:
                envelopes.append(envelope)
                if envelope.is_a("InputRequiredEvent"):
                    answer = HumanResponseEvent(response="yes", by="ann")
                    await client.send_event(handler.handler_id, answer)
        done = await client.get_handler(handler.handler_id)

    quoted, question, stop = envelopes
    # On the wire, free fields sit flat beside the declared ones.
    assert quoted.value == {"total": 100, "currency": "EUR"}
    assert quoted.to_event(Quoted) == Quoted(total=100, currency="EUR")  # type: ignore[call-arg]
    assert question.to_event() == InputRequiredEvent(prefix="book?", total=100)
    expected = StopEvent(result="yes", by="ann", currency="EUR")
    assert stop.to_event() == expected
    assert done.result is not None
    assert done.result.to_event() == expected


async def test_free_fields_sent_the_incumbents_way_under_data(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        started = await http.post(
            "/workflows/quote/run-nowait",
            json={"start_event": {"items": [1], "_data": {"currency": "CHF"}}},
        )
        assert started.status_code == 200, started.text
        handler_id = started.json()["handler_id"]
        async with WorkflowClient(url) as client:
            async with client.stream_events(handler_id) as stream:
                async for envelope in stream:
                    if envelope.is_a("InputRequiredEvent"):
                        break
            sent = await http.post(
                f"/events/{handler_id}",
                json={
                    "event": {
                        "type": "HumanResponseEvent",
                        "value": {"response": "ok", "_data": {"by": "bo"}},
                    }
                },
            )
            assert sent.status_code == 200, sent.text
            done = await client.wait_for_handler(handler_id)
    assert done.result is not None
    assert done.result.value == {"result": "ok", "by": "bo", "currency": "CHF"}
