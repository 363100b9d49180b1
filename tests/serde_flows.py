"""Workflows for the serialization tests, importable by a second process."""

from __future__ import annotations

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


class Question(InputRequiredEvent):
    pass


class Approve(Workflow):
    """Counts how often its side effects ran, so a resume can be checked."""

    @step
    async def draft(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("drafted", await ctx.store.get("drafted", default=0) + 1)
        name = await ctx.wait_for_event(HumanResponseEvent, waiter_event=Question(prefix="name?"))
        await ctx.store.set("name", name.response)
        ok = await ctx.wait_for_event(HumanResponseEvent, waiter_event=Question(prefix="ok?"))
        return StopEvent(result=f"{ev.topic} by {name.response}: {ok.response}")


class Item(Event):
    n: int


class Part(Event):
    n: int


class HalfCollected(Workflow):
    """A fan-out whose workers block on ``gate`` for items >= ``block_from``."""

    def __init__(self, block_from: int | None = None) -> None:
        super().__init__()
        self.block_from = block_from
        self.gate = anyio.Event()
        self.worked: list[int] = []

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
        for n in range(5):
            ctx.send_event(Item(n=n))
        return None

    @step(num_workers=5)
    async def work(self, ev: Item) -> Part:
        if self.block_from is not None and ev.n >= self.block_from:
            await self.gate.wait()
        self.worked.append(ev.n)
        return Part(n=ev.n * 10)

    @step
    async def gather(self, ev: Part, ctx: Context) -> StopEvent | None:
        parts = ctx.collect_events(ev, [Part] * 5)
        return StopEvent(result=sorted(p.n for p in parts)) if parts else None
