"""An order workflow on DBOS: recorded step by step, answered from outside.

``python examples/dbos_orders.py start order-42`` starts an order that
reserves stock, then waits for a person to approve the payment; the process
may be killed at any point.  ``python examples/dbos_orders.py approve
order-42`` (another process, now or later) sends the approval, and
``python examples/dbos_orders.py wait order-42`` resumes the order if nobody
executes it any more and prints its result.  With no arguments, the program
does all three in one process.

The runs live in ``orders.db`` (SQLite) next to where it runs; give
``DBOS_DATABASE_URL=postgresql://...`` to share them between machines.
Needs ``pip install 'anyflow[dbos]'``; asyncio only.
"""

from __future__ import annotations

import asyncio
import os
import sys

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
from anyflow.dbos import DBOSRuntime


class Order(StartEvent):
    item: str
    quantity: int


class Reserved(Event):
    item: str
    quantity: int


class Orders(Workflow):
    @step
    async def reserve(self, ev: Order, ctx: Context) -> Reserved:
        await ctx.store.set("item", ev.item)
        return Reserved(item=ev.item, quantity=ev.quantity)

    @step
    async def ask_payment(self, ev: Reserved) -> InputRequiredEvent:
        return InputRequiredEvent(prefix=f"approve paying for {ev.quantity} x {ev.item}?")

    @step
    async def pay(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        item = await ctx.store.get("item")
        if ev.response != "yes":
            return StopEvent(result=f"{item}: payment refused")
        return StopEvent(result=f"{item}: paid and shipped")


def runtime() -> DBOSRuntime:
    url = os.environ.get("DBOS_DATABASE_URL", "sqlite:///orders.db")
    return DBOSRuntime(
        name="orders", database_url=url, workflows=[Orders()], dbos_config={"log_level": "WARNING"}
    )


async def start(order_id: str) -> None:
    async with runtime() as rt:
        handler = Orders().run(run_id=order_id, runtime=rt, item="lamp", quantity=2)
        async for event in handler.stream_events():
            if isinstance(event, InputRequiredEvent):
                print(f"{order_id} asks: {event.prefix}")
                break
    # Leaving the block stops the run here; it stays recorded, waiting.


async def approve(order_id: str) -> None:
    async with runtime() as rt:
        order = rt.attach(Orders(), order_id)  # follows it, wherever it executes
        await order.send_event(HumanResponseEvent(response="yes"))


async def wait(order_id: str) -> None:
    async with runtime() as rt:
        result = await Orders().run(run_id=order_id, runtime=rt)  # resumes it if need be
        print(result)


async def main(argv: list[str]) -> None:
    if argv:
        command, order_id = argv
        await {"start": start, "approve": approve, "wait": wait}[command](order_id)
        return
    order_id = f"order-{os.getpid()}"
    await start(order_id)
    await approve(order_id)
    await wait(order_id)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
