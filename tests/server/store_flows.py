"""What the store-failure tests serve in a child process (a short store_retry,
so that a server whose store works again notices within a fraction of a second)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.server import WorkflowServer
from tests.server.flows import Answer, Ask

if TYPE_CHECKING:
    from anyflow.durable import Store


class GateStart(StartEvent):
    gate: str
    """A file the test creates to let the step go on."""


class Tick(Event):
    n: int


class Gated(Workflow):
    """One step that writes ``Tick(0)`` to the stream, waits for the test's
    gate file, writes ``Tick(1..3)`` and stops: its batch (every tick and the
    stop event) is recorded when it returns, after the test made the store fail."""

    @step
    async def work(self, ev: GateStart, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Tick(n=0))
        gate = anyio.Path(ev.gate)
        # Polled: the gate is a file that the test, another process, creates.
        while not await gate.exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
        for n in range(1, 4):
            ctx.write_event_to_stream(Tick(n=n))
        return StopEvent(result="done")


def ask_server(store: Store) -> WorkflowServer:
    server = WorkflowServer(store, store_retry=0.2)
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    server.add_workflow("gated", Gated())
    return server
