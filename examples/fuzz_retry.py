"""A retry and a timeout that charge a card twice (docs/testing.md).

``charge`` calls a payment gateway and is retried when it fails or answers too
late (``@step(timeout=...)``).  A late answer is the trap: the gateway did
charge the card, the step's result is lost, and the retry charges again.
Ordinary tests never see it, because the fake gateway always answers at once.
The simulator makes attempts answer too late (a ``"timeout"`` fault: the step
runs to its end, then its attempt fails with ``StepTimeoutError``) and finds
the double charge; ``SafeCheckout`` passes an idempotency key that is the same
for every attempt, so the gateway charges once.

    python examples/fuzz_retry.py
"""

from __future__ import annotations

import anyio

from anyflow import ConstantDelayRetryPolicy, Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.testing import Fault, simulate


class Gateway:
    """A fake payment gateway: remembers the charges, one per idempotency key."""

    def __init__(self) -> None:
        self.charges: dict[str, int] = {}

    def charge(self, amount: int, key: str) -> None:
        self.charges.setdefault(key, amount)


class Payment(StartEvent):
    amount: int


class Charged(Event):
    amount: int


class Checkout(Workflow):
    def __init__(self, gateway: Gateway) -> None:
        super().__init__(timeout=3600)
        self.gateway = gateway

    @step(timeout=10, retry_policy=ConstantDelayRetryPolicy(delay=30, maximum_attempts=3))
    async def charge(self, ev: Payment, ctx: Context) -> Charged:
        # the bug: a key per attempt, so a retry is a new charge
        self.gateway.charge(ev.amount, key=ctx.idempotency_key())
        return Charged(amount=ev.amount)

    @step
    async def receipt(self, ev: Charged) -> StopEvent:
        return StopEvent(result=f"charged {ev.amount}")


class SafeCheckout(Checkout):
    @step(timeout=10, retry_policy=ConstantDelayRetryPolicy(delay=30, maximum_attempts=3))
    async def charge(self, ev: Payment, ctx: Context) -> Charged:
        # the fix: one key for every attempt of this payment
        self.gateway.charge(ev.amount, key=ctx.idempotency_key(across_retries=True))
        return Charged(amount=ev.amount)


async def main() -> None:
    gateway = Gateway()
    print("ordinary run:", await Checkout(gateway).run(amount=25), gateway.charges)
    late = [Fault("timeout", step="charge", nth=0)]
    for flow in (Checkout, SafeCheckout):
        gateway = Gateway()
        simulation = await simulate(flow(gateway), faults=late, amount=25)
        print(
            f"{flow.__name__}, first answer late:",
            simulation.result,
            "charges:",
            len(gateway.charges),
        )


if __name__ == "__main__":
    anyio.run(main)
