"""The workflow whose journal ``records.json`` keeps: a run of it uses every
kind of tick (a retry, a caught failure, a wait for a human, a fan-in)."""

from __future__ import annotations

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    catch_error,
    step,
)

ATTEMPTS: dict[int, int] = {}


class Order(StartEvent):
    lines: int


class Line(Event):
    n: int


class Packed(Event):
    n: int


class Approved(Event):
    packed: int


class Shop(Workflow):
    @step
    async def split(self, ev: Order, ctx: Context) -> Line | None:
        await ctx.store.set("lines", ev.lines)
        for n in range(ev.lines):
            ctx.send_event(Line(n=n))
        return None

    @step(num_workers=2, retry_policy=ConstantDelayRetryPolicy(delay=0.01, maximum_attempts=2))
    async def pack(self, ev: Line) -> Packed:
        ATTEMPTS[ev.n] = ATTEMPTS.get(ev.n, 0) + 1
        if ev.n == 1 and ATTEMPTS[ev.n] == 1:
            raise ValueError("the box tore")  # retried once
        if ev.n == 2:
            raise KeyError("no box for 2")  # caught by `rescue`
        return Packed(n=ev.n)

    @catch_error(for_steps=["pack"])
    async def rescue(self, ev: StepFailedEvent) -> Packed:
        return Packed(n=-1)

    @step
    async def gather(self, ev: Packed, ctx: Context) -> Approved | None:
        lines = await ctx.store.get("lines")
        got = ctx.collect_events(ev, [Packed] * lines)
        if got is None:
            return None
        return Approved(packed=sum(p.n for p in got if isinstance(p, Packed)))

    @step
    async def approve(self, ev: Approved, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ship it?")
        )
        return StopEvent(result={"packed": ev.packed, "answer": answer.response})
