"""Workflows the command-line tests run, by module (``tests.cli.flows:Name``)
or by file (``tests/cli/flows.py:Name``)."""

from __future__ import annotations

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step


class Greeting(Event):
    text: str


class Greet(StartEvent):
    name: str


class Hello(Workflow):
    """Greets someone in two steps."""

    @step
    async def compose(self, ev: Greet, ctx: Context) -> Greeting:
        ctx.write_event_to_stream(Greeting(text="composing"))
        return Greeting(text=f"hello {ev.name}")

    @step
    async def finish(self, ev: Greeting) -> StopEvent:
        return StopEvent(result={"greeting": ev.text})


hello = Hello(timeout=10)


class Broken(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise ValueError("the answer is not 42")


not_a_workflow = 42


class Unfinished(Workflow):
    """Fails validation when built: nothing returns a StopEvent."""

    @step
    async def start(self, ev: StartEvent) -> Greeting:
        return Greeting(text="and then?")
