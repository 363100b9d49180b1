"""A durable run outlives its process.

The order below is started by a child process that dies (SIGKILL, no cleanup)
in the middle of its second step, right after that step's side effect.  This
process then resumes the run by its id: the first step, whose result was
recorded, does not run again; the second runs again, and its side effect is
made once because it is keyed by ``ctx.idempotency_key()``.

    python examples/durable.py            # or: python examples/durable.py --backend trio
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import anyio

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.durable import DurableRuntime, SqliteStore


class Order(StartEvent):
    order_id: str
    amount: int


class Charged(Event):
    order_id: str


class Packed(Event):
    order_id: str


def side_effect(ctx: Context, what: str) -> None:
    """Stands for a call to another system that takes an idempotency key (a
    payment API, an email service): an effect already made under this key is
    not made again."""
    ledger = Path(os.environ["ORDER_LEDGER"])
    key = ctx.idempotency_key()
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    if any(json.loads(line)["key"] == key for line in lines):
        print(f"  {what}: already done under this key, not again")
        return
    with ledger.open("a") as file:
        file.write(json.dumps({"what": what, "key": key}) + "\n")
    print(f"  {what}")


class OrderFlow(Workflow):
    @step
    async def charge(self, ev: Order, ctx: Context) -> Charged:
        side_effect(ctx, f"charge {ev.amount} EUR")
        return Charged(order_id=ev.order_id)

    @step
    async def pack(self, ev: Charged, ctx: Context) -> Packed:
        side_effect(ctx, "pack the parcel")
        if os.environ.get("ORDER_CRASH") == "pack":
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies here
        return Packed(order_id=ev.order_id)

    @step
    async def ship(self, ev: Packed, ctx: Context) -> StopEvent:
        side_effect(ctx, "hand it to the courier")
        return StopEvent(result=f"order {ev.order_id} shipped")


async def start(database: str) -> None:
    """The first process: starts the order (and dies in ``pack``)."""
    async with SqliteStore(database) as store, DurableRuntime(store) as durable:
        await OrderFlow().run(run_id="order-42", runtime=durable, order_id="42", amount=30)


async def main(backend: str = "asyncio") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = str(Path(tmp) / "runs.db")
        env = {**os.environ, "ORDER_LEDGER": str(Path(tmp) / "ledger"), "ORDER_CRASH": "pack"}
        print("first process:")
        child = await anyio.run_process(
            [sys.executable, __file__, "--start", database, backend],
            env=env,
            check=False,
        )
        print(child.stdout.decode(), end="")
        print(f"first process killed by signal {-child.returncode}")

        os.environ["ORDER_LEDGER"] = env["ORDER_LEDGER"]
        print("this process resumes order-42:")
        async with SqliteStore(database) as store, DurableRuntime(store) as durable:
            result = await OrderFlow().run(run_id="order-42", runtime=durable)
            print(result)
            [record] = await durable.list_runs()
            print(f"{record.run_id}: {record.status}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--start"]:
        anyio.run(start, sys.argv[2], backend=sys.argv[3])
    else:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
        args = parser.parse_args()
        if args.backend == "trio" and importlib.util.find_spec("trio") is None:
            parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
        anyio.run(main, args.backend, backend=args.backend)
