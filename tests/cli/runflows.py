"""Workflows that fail part-way (for drawings of recorded runs) and that ask
questions (for ``anyflow run``'s answers), by module
(``tests.cli.runflows:Name``) or by file (``tests/cli/runflows.py:Name``)."""

from __future__ import annotations

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Draft(Event):
    text: str


class Rejected(Event):
    reason: str


class Review(Workflow):
    """Writes a draft, then reviews it; the review fails, once retried."""

    @step
    async def write(self, ev: StartEvent) -> Draft:
        return Draft(text="first draft")

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def review(self, ev: Draft) -> StopEvent | Rejected:
        raise ValueError(f"{ev.text!r} is <too> short")

    @step
    async def rewrite(self, ev: Rejected) -> StopEvent:
        return StopEvent(result=f"rewritten: {ev.reason}")


class Ask(Workflow):
    """Asks for a name, then greets it: the question is returned by a step."""

    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Your name?")

    @step
    async def greet(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.response}")


class Interview(Workflow):
    """Two questions, asked by one step that waits for each answer."""

    @step
    async def interview(self, ev: StartEvent, ctx: Context) -> StopEvent:
        name = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Name?"), waiter_id="name"
        )
        colour = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="Favourite colour?"),
            waiter_id="colour",
        )
        return StopEvent(result=f"{name.response} likes {colour.response}")


class Destination(HumanResponseEvent):
    """The answer a step takes as its input."""


class Confirmation(HumanResponseEvent):
    """The answer a step waits for, about one trip."""

    trip: str


class Trip(Workflow):
    """A question returned (answered by a ``Destination``), then one waited for
    (answered by a ``Confirmation`` about this trip)."""

    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Where to?")

    @step
    async def confirm(self, ev: Destination, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            Confirmation,
            waiter_event=InputRequiredEvent(prefix=f"Book {ev.response}?"),
            requirements={"trip": ev.response},
        )
        return StopEvent(result=f"{answer.trip}: {answer.response}")


class Quiet(Workflow):
    """A step that returns nothing (it sends its event) and one that fails once."""

    @step
    async def send(self, ev: StartEvent, ctx: Context) -> Draft | None:
        ctx.send_event(Draft(text="sent"))
        return None

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def flaky(self, ev: Draft, ctx: Context) -> StopEvent:
        if ctx.retry_info().attempt == 1:
            raise ConnectionError("once")
        return StopEvent(result=ev.text)
