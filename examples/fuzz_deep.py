"""A race that hides deep in a run: the fan-in of examples/fuzz_fanout.py,
behind ten sequential stages (docs/testing.md).

Before the basket is priced, an order goes through ten checks, one after the
other: about thirty points where the scheduler has nothing to choose.  The
race comes after them.  A random seed finds it almost every time; the
hypothesis search finds it too, because a decision with one option uses no
choice of the schedule, so the schedule's first choices are the race's.

    python examples/fuzz_deep.py
"""

from __future__ import annotations

import anyio

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.testing import simulate


class Order(StartEvent):
    prices: list[int]


class Checked(Event):
    stage: int


class Item(Event):
    price: int
    last: bool


class Priced(Event):
    price: int
    last: bool


STAGES = 10


class DeepRacyBasket(Workflow):
    @step
    async def receive(self, ev: Order, ctx: Context) -> Checked:
        await ctx.store.set("prices", ev.prices)
        return Checked(stage=0)

    @step
    async def check(self, ev: Checked, ctx: Context) -> Checked | Item | None:
        await ctx.store.set("checked", ev.stage)  # a check of the order, stage by stage
        if ev.stage + 1 < STAGES:
            return Checked(stage=ev.stage + 1)
        prices = await ctx.store.get("prices")
        for i, price in enumerate(prices):
            ctx.send_event(Item(price=price, last=i == len(prices) - 1))
        return None

    @step(num_workers=4)
    async def price(self, ev: Item) -> Priced:
        return Priced(price=ev.price, last=ev.last)

    @step
    async def total(self, ev: Priced, ctx: Context) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            state["total"] = state.get("total", 0) + ev.price
            if ev.last:  # the bug: "the last item sent is the last one priced"
                return StopEvent(result=state["total"])
        return None


async def main() -> None:
    prices = [1, 10, 100]
    print("ordinary run:", await DeepRacyBasket().run(prices=prices))
    wrong = 0
    for seed in range(100):
        simulation = await simulate(DeepRacyBasket(), seed=seed, prices=prices)
        wrong += simulation.result != sum(prices)
    print(f"simulated, 100 seeds: {wrong} wrong totals")


if __name__ == "__main__":
    anyio.run(main)
