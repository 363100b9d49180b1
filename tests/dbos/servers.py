"""What the two-server test serves: `python -m anyflow.server
tests/dbos/servers.py:ask_server --dbos URL` in each process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.server import WorkflowServer

if TYPE_CHECKING:
    from anyflow.dbos import DBOSRuntime


class Question(InputRequiredEvent):
    key: str


class Answer(HumanResponseEvent):
    key: str


class Visit(Workflow):
    """Greets a visitor, asking their name first."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Question(key="name", prefix="Who are you?"))
        answer = await ctx.wait_for_event(Answer, requirements={"key": "name"})
        return StopEvent(result=f"welcome, {answer.response}")


def ask_server(runtime: DBOSRuntime) -> WorkflowServer:
    server = WorkflowServer(runtime=runtime)
    server.add_workflow("visit", Visit(), additional_events=[Answer])
    return server
