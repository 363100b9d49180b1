"""A bid at the deadline (docs/testing.md).

An auction closes 30 s after it opens.  It waits for bids, each time for the
time left: 30 s, less the time of the last bid.  A bid sent at exactly 30 s
may go in before the closing timer fires, and then leaves 0 s to wait:
``wait_for_event(timeout=0)`` is refused, and the auction fails.  Tests that
send bids "now" never see it; ``AuctionMachine``, a hypothesis state machine
whose rule sends bids at times drawn around the run's deadlines, finds it
and shrinks it to three rules: a bid at 30.0, time passing with the bid
first, the step going on.  ``SafeAuction`` closes when no time is left.

    python examples/fuzz_deadline.py
"""

from __future__ import annotations

from typing import ClassVar

import anyio
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.errors import WaitTimeoutError
from anyflow.testing import Schedule, simulate
from anyflow.testing.strategies import WorkflowStateMachine

CLOSE = 30.0


class Bid(Event):
    amount: int
    at: float  # when the bidder sent it, in seconds after the opening


class Auction(Workflow):
    @step
    async def auction(self, ev: StartEvent, ctx: Context) -> StopEvent:
        best, left = 0, CLOSE
        while True:
            try:
                bid = await ctx.wait_for_event(Bid, timeout=left)
            except WaitTimeoutError:
                return StopEvent(result=best)
            async with ctx.store.edit_state() as state:
                state["accepted"] = [*state.get("accepted", []), bid.at]
            best, left = max(best, bid.amount), CLOSE - bid.at
            if self.closed(left):
                return StopEvent(result=best)

    def closed(self, left: float) -> bool:
        return False  # the bug: a bid at exactly the close leaves 0 s to wait


class SafeAuction(Auction):
    def closed(self, left: float) -> bool:
        return left <= 0  # the fix


class AuctionMachine(WorkflowStateMachine):
    auction: ClassVar[type[Auction]] = Auction

    def make_workflow(self) -> Workflow:
        return self.auction()

    @rule(amount=st.integers(1, 9), data=st.data())
    def bid(self, amount: int, data: st.DataObject) -> None:
        if not self.done:
            at = data.draw(self.times(), label="at")  # around the deadlines
            self.send(Bid(amount=amount, at=at), at=at)

    @invariant()
    def closes_on_time(self) -> None:
        assert all(at <= CLOSE for at in self.store_get("accepted", []))
        if self.done:
            try:
                self.result  # noqa: B018 - raises the run's exception
            except Exception as exc:
                raise AssertionError(f"the auction failed: {exc!r}") from exc


async def main() -> None:
    for flow in (Auction, SafeAuction):
        for choice, order in [(0, "the close first"), (1, "the bid first")]:
            simulation = await simulate(
                flow(), send=[(CLOSE, Bid(amount=5, at=CLOSE))], schedule=Schedule((choice,))
            )
            try:
                outcome = simulation.result
            except ValueError as exc:
                outcome = f"failed: {exc}"
            print(f"{flow.__name__}, a bid at 30 s, {order}: {outcome}")


if __name__ == "__main__":
    anyio.run(main)
