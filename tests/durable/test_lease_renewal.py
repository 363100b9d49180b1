"""A lease renewal that loses the race with its run's end is not an error.

The runtime renews the lease of every claimed run every third of the lease.
A renewal that was on its way to the store while the run finished reaches a
store that has released the run, which refuses it with ``LeaseLostError``.
Under load (PostgreSQL, many runs) that race is common, and each one logged a
traceback for a run that had completed.  Here the race is driven step by
step: a store decorator holds the renewal until the run has finished.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from anyflow import Context, HumanResponseEvent, StartEvent, StopEvent, Workflow, step
from anyflow.durable import DurableRuntime, MemoryStore, StoreDecorator

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pytest

    from anyflow.durable import Owner


class Go(HumanResponseEvent):
    pass


class WaitForGo(Workflow):
    @step
    async def wait(self, ev: StartEvent, ctx: Context) -> StopEvent:
        go = await ctx.wait_for_event(Go)
        return StopEvent(result=go.response)


class HeldRenewals(StoreDecorator):
    """Holds each lease renewal (an append with nothing to record) until
    ``let_go`` is set; ``held`` is set when one arrives, ``done`` when it
    has been answered."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())
        self.held = anyio.Event()
        self.let_go = anyio.Event()
        self.done = anyio.Event()

    async def append(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        renewal = not ticks and not events and state is None
        if renewal:
            self.held.set()
            await self.let_go.wait()
        try:
            await self.inner.append(run_id, owner, ticks, events, state, now, lease_until)
        finally:
            if renewal:
                self.done.set()


async def test_a_renewal_that_arrives_after_the_run_finished_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = HeldRenewals()
    caplog.set_level(logging.DEBUG, logger="anyflow")
    async with DurableRuntime(store, lease=0.03) as runtime:
        handler = WaitForGo().run(run_id="r", runtime=runtime)
        with anyio.fail_after(10):
            await store.held.wait()  # a renewal is on its way, and waits
            await handler.send_event(Go(response="done"))
            assert await handler == "done"  # finished: its lease released
            store.let_go.set()  # the renewal reaches the store now
            await store.done.wait()
        assert (await runtime.get_run("r")).status == "completed"  # type: ignore[union-attr]
    # anyflow's own lines (asyncio's debug mode may time a slow callback on a busy machine)
    assert [
        r for r in caplog.records if r.name.startswith("anyflow") and r.levelno >= logging.WARNING
    ] == []
