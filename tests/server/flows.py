"""Workflows the server tests serve: written as a user of the server would."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from anyflow.server import WorkflowServer

if TYPE_CHECKING:
    from anyflow.durable import Store


class Greet(Workflow):
    @step
    async def hello(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Progress(step="hello", n=1))
        return StopEvent(result=f"hello {ev.get('name', 'world')}")


class Progress(Event):
    step: str
    n: int


class CountStart(StartEvent):
    count: int


class Counted(StopEvent):
    total: int


class Count(Workflow):
    """Publishes ``count`` progress events, then stops with a custom stop event."""

    @step
    async def count(self, ev: CountStart, ctx: Context) -> Counted:
        for n in range(ev.count):
            ctx.write_event_to_stream(Progress(step="count", n=n))
        return Counted(total=ev.count)


class Question(InputRequiredEvent):
    key: str


class Answer(HumanResponseEvent):
    key: str


class Ask(Workflow):
    """Asks a question and waits inside the step for the answer."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            Answer, waiter_event=Question(key="name", prefix="Who are you?"), waiter_id="name"
        )
        return StopEvent(result=f"nice to meet you, {answer.response}")


class Boom(Exception):
    pass


class Fail(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise Boom("the fuse was short")


def ask_server(store: Store) -> WorkflowServer:
    """What `python -m anyflow.server tests/server/flows.py:ask_server` serves."""
    server = WorkflowServer(store)
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    return server


class AskBriefly(Workflow):
    """Asks, and gives up if no answer comes within half a second."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            Answer, waiter_event=Question(key="name", prefix="Quick, who?"), timeout=0.5
        )
        return StopEvent(result=answer.response)
