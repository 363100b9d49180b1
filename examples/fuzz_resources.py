"""Faults at the calls a step makes to its resources (docs/testing.md).

``move`` transfers money with two calls to the bank, a resource made by a
factory: a debit, then a credit.  It is retried when it fails, and a crashed
run is resumed from its journal, so the step may run again after its debit was
made: without a key, the bank debits again and the money is gone.  Ordinary
tests never see it, because the fake bank always answers.

Under simulation the step's resources are wrapped: each call to one of their
methods is a fault site named after the step's parameter and the method
(``bank.debit``), where a fault can make the call fail, lose its answer after
it was made, crash the process or cancel the run.  Nothing in the workflow's
code changes.  ``SafeTransfer`` sends a key that is the same for every attempt
of this transfer, and the bank does each call once per key.

    python examples/fuzz_resources.py
"""

from __future__ import annotations

from typing import Annotated

import anyio

from anyflow import ConstantDelayRetryPolicy, Context, StartEvent, StopEvent, Workflow, step
from anyflow.resource import Resource, ResourceManager
from anyflow.testing import Fault, simulate


class Bank:
    """A fake bank: two accounts, and each keyed call done once."""

    def __init__(self) -> None:
        self.balances = {"ann": 100, "bob": 0}
        self.seen: set[tuple[str, str]] = set()

    async def debit(self, who: str, amount: int, key: str | None = None) -> None:
        if self._first("debit", key):
            self.balances[who] -= amount

    async def credit(self, who: str, amount: int, key: str | None = None) -> None:
        if self._first("credit", key):
            self.balances[who] += amount

    def _first(self, call: str, key: str | None) -> bool:
        if key is None:
            return True
        first = (call, key) not in self.seen
        self.seen.add((call, key))
        return first


def open_bank() -> Bank:
    """The resource's factory (a connection, in production).  A test hands
    the runs a bank of its own through a ``ResourceManager`` (``with_bank``)."""
    return Bank()


class Transfer(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=3))
    async def move(
        self, ev: StartEvent, ctx: Context, bank: Annotated[Bank, Resource(open_bank)]
    ) -> StopEvent:
        key = self.key(ctx)
        await bank.debit("ann", 10, key=key)
        await bank.credit("bob", 10, key=key)
        return StopEvent(result="moved 10")

    def key(self, ctx: Context) -> str | None:
        return None  # the bug: a step that runs again debits again


class SafeTransfer(Transfer):
    def key(self, ctx: Context) -> str | None:
        return ctx.idempotency_key(across_retries=True)  # the fix: one key per transfer


async def with_bank(flow: type[Transfer], bank: Bank) -> Transfer:
    """``flow``, whose runs use ``bank`` as their ``open_bank`` resource."""
    manager = ResourceManager()
    await manager.set("open_bank", bank)
    return flow(resource_manager=manager)


async def main() -> None:
    bank = Bank()
    print("ordinary run:", await (await with_bank(Transfer, bank)).run(), bank.balances)
    print("calls:", (await simulate(await with_bank(Transfer, Bank()))).resource_calls)
    for fault in [
        Fault("error", call="bank.credit"),
        Fault("timeout", call="bank.debit"),
        Fault("crash", call="bank.credit"),
    ]:
        for flow in (Transfer, SafeTransfer):
            bank = Bank()
            simulation = await simulate(await with_bank(flow, bank), faults=[fault])
            where = f"{flow.__name__}, {fault.kind} at {fault.call}:"
            print(where, simulation.result, bank.balances)


if __name__ == "__main__":
    anyio.run(main)
