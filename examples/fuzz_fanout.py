"""A race in a fan-out/fan-in workflow that ordinary tests miss (docs/testing.md).

A basket is priced item by item, in parallel, and a last step adds the prices
up.  ``RacyBasket`` assumes the prices come back in the order the items were
sent: it answers when the price of the last item arrives.  Run as usual on
asyncio, they always do, and the test passes; in production, a slow price
comes back after the last one and is left out.  ``Basket`` waits for all of
them with ``collect_events``.

    python examples/fuzz_fanout.py
"""

from __future__ import annotations

import anyio

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.testing import simulate


class Order(StartEvent):
    prices: list[int]


class Item(Event):
    price: int
    last: bool


class Priced(Event):
    price: int
    last: bool


class RacyBasket(Workflow):
    @step
    async def split(self, ev: Order, ctx: Context) -> Item | None:
        await ctx.store.set("items", len(ev.prices))
        for i, price in enumerate(ev.prices):
            ctx.send_event(Item(price=price, last=i == len(ev.prices) - 1))
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


class Basket(RacyBasket):
    @step
    async def total(self, ev: Priced, ctx: Context) -> StopEvent | None:
        items = await ctx.store.get("items")
        priced = ctx.collect_events(ev, [Priced] * items)  # the fix: wait for all
        if priced is None:
            return None
        return StopEvent(result=sum(p.price for p in priced))


async def main() -> None:
    prices = [1, 10, 100]
    print("ordinary run:", await RacyBasket().run(prices=prices))
    for seed in range(100):
        simulation = await simulate(RacyBasket(), seed=seed, prices=prices)
        if simulation.result != sum(prices):
            print(f"simulated, seed {seed}: {simulation.result} instead of {sum(prices)}")
            break
    fixed = {(await simulate(Basket(), seed=s, prices=prices)).result for s in range(100)}
    print("fixed, 100 seeds:", sorted(fixed))


if __name__ == "__main__":
    anyio.run(main)
