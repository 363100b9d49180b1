"""A workflow served over HTTP, and a client that talks to it.

The server hosts a support-ticket workflow that asks a person to choose a
priority.  The client starts a ticket, follows its events, answers the
question when it comes, and prints the result.  Server and client run in one
process here for the sake of the example; in production the server is
``python -m anyflow.server examples/server.py:make_server --store
sqlite:///tickets.db`` and the client lives elsewhere (or is a browser: open
the server's URL for the run inspector).

Run it with ``python examples/server.py`` (add ``--backend trio`` to run it under trio).
Needs ``pip install 'anyflow[server,client]'``.
"""

from __future__ import annotations

import argparse
import importlib.util

import anyio

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
from anyflow.durable import MemoryStore, Store
from anyflow.server import WorkflowServer


class Ticket(StartEvent):
    title: str


class Triaged(Event):
    title: str
    priority: str


class PriorityQuestion(InputRequiredEvent):
    title: str


class Priority(HumanResponseEvent):
    """The answer; ``response`` is the priority."""


class Support(Workflow):
    @step
    async def triage(self, ev: Ticket, ctx: Context) -> Triaged:
        answer = await ctx.wait_for_event(
            Priority,
            waiter_event=PriorityQuestion(title=ev.title, prefix="Which priority?"),
        )
        return Triaged(title=ev.title, priority=answer.response)

    @step
    async def file(self, ev: Triaged) -> StopEvent:
        return StopEvent(result=f"{ev.title!r} filed as {ev.priority}")


def make_server(store: Store | None = None) -> WorkflowServer:
    server = WorkflowServer(store if store is not None else MemoryStore())
    server.add_workflow("support", Support(), additional_events=[Priority])
    return server


async def main() -> None:
    server = make_server()
    async with anyio.create_task_group() as tg:
        url = await tg.start(
            lambda task_status: server.serve(port=0, handle_signals=False, task_status=task_status)
        )
        async with WorkflowClient(url) as client:
            ticket = await client.run_nowait("support", title="printer on fire")
            async for event in client.stream_events(ticket.handler_id):
                print(f"#{event.sequence} {event.type}")
                if event.is_a("InputRequiredEvent"):
                    await client.send_event(ticket.handler_id, Priority(response="urgent"))
            done = await client.get_handler(ticket.handler_id)
            assert done.result is not None
            print(f"{done.status}: {done.result.value['result']}")
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
