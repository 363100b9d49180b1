"""A small order pipeline: fan out, retry a flaky call, fan in, stream progress.

Run it with ``python examples/quickstart.py`` (add ``--backend trio`` to run the
very same workflow under trio, which is an extra: ``pip install 'anyflow[trio]'``).
"""

from __future__ import annotations

import argparse
import importlib.util

import anyio

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Progress(Event):
    message: str


class CheckStock(Event):
    item: str


class Stocked(Event):
    item: str
    price: float


PRICES = {"owl": 12.5, "teapot": 30.0, "lamp": 18.0}


class OrderFlow(Workflow):
    """Check every item of an order in parallel, then total it."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.calls: dict[str, int] = {}

    @step
    async def split(self, ev: StartEvent, ctx: Context) -> CheckStock | None:
        await ctx.store.set("items", len(ev.items))
        ctx.write_event_to_stream(Progress(message=f"order of {len(ev.items)} items received"))
        for item in ev.items:
            ctx.send_event(CheckStock(item=item))
        return None

    @step(num_workers=3, retry_policy=ConstantDelayRetryPolicy(delay=0.05, maximum_attempts=3))
    async def check(self, ev: CheckStock, ctx: Context) -> Stocked:
        self.calls[ev.item] = self.calls.get(ev.item, 0) + 1
        if ev.item == "teapot" and ctx.retry_info().attempt == 1:
            ctx.write_event_to_stream(
                Progress(message="stock service timed out for teapot; retrying")
            )
            raise TimeoutError("stock service did not answer")
        await anyio.sleep(0.01)  # stands in for a network call
        ctx.write_event_to_stream(Progress(message=f"{ev.item}: in stock at {PRICES[ev.item]:.2f}"))
        return Stocked(item=ev.item, price=PRICES[ev.item])

    @step
    async def total(self, ev: Stocked, ctx: Context) -> StopEvent | None:
        stocked = ctx.collect_events(ev, [Stocked] * await ctx.store.get("items"))
        if stocked is None:
            return None
        return StopEvent(result=round(sum(s.price for s in stocked), 2))


async def main() -> None:
    async with OrderFlow().run(items=["owl", "teapot", "lamp"]) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, Progress):
                print(f"  .. {ev.message}")
        total = await handler
    print(f"order total: {total:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    print(f"anyflow quickstart on {args.backend}")
    anyio.run(main, backend=args.backend)
