"""``DurableRuntime.starting_new``: a run the caller says is new is not looked
up in the store; its first batch creates it, or is refused if the id is taken."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.durable import DurableRuntime, MemoryStore, RunRecord
from anyflow.errors import RunLockedError

if TYPE_CHECKING:
    from anyflow.durable import Store

pytestmark = pytest.mark.anyio

CALLS: list[int] = []


class Go(StartEvent):
    n: int


class Said(Event):
    n: int


class Echo(Workflow):
    @step
    async def echo(self, ev: Go, ctx: Context) -> StopEvent:
        CALLS.append(ev.n)
        ctx.write_event_to_stream(Said(n=ev.n))
        return StopEvent(result=ev.n)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def get_run(self, run_id: str) -> RunRecord | None:
        self.lookups += 1
        return await super().get_run(run_id)


async def test_a_new_run_is_recorded_without_looking_it_up_first() -> None:
    store = CountingStore()
    async with DurableRuntime(store) as runtime:
        wf, run_id = Echo(), "n1"
        with runtime.starting_new(run_id):
            handler = wf.run(run_id=run_id, runtime=runtime, n=3)
        await handler.wait_recorded()
        assert await handler == 3
    assert store.lookups == 0
    [record] = await store.list_runs()
    assert (record.run_id, record.status) == ("n1", "completed")
    assert [seq for seq, _ in await store.read_events("n1")] == [0, 1]


async def test_a_new_run_under_a_recorded_id_is_refused_and_leaves_that_run_alone(
    store: Store,
) -> None:
    async with DurableRuntime(store) as runtime:
        assert await Echo().run(run_id="n2", runtime=runtime, n=1) == 1
    ticks, events = await store.read_ticks("n2"), await store.read_events("n2")
    async with DurableRuntime(store) as runtime:
        with runtime.starting_new("n2"):
            handler = Echo().run(run_id="n2", runtime=runtime, n=2)
        with pytest.raises(
            RunLockedError, match=r"^run 'n2' is not recorded: run 'n2' was recorded by another"
        ):
            await handler.wait_recorded()
        with pytest.raises(RunLockedError):
            await handler
        # Outside the block the id is looked up again: the recorded run's outcome.
        assert await Echo().run(run_id="n2", runtime=runtime) == 1
    assert CALLS == [1]  # the refused run's step never ran
    assert (await store.read_ticks("n2"), await store.read_events("n2")) == (ticks, events)
    [record] = await store.list_runs()
    assert record.status == "completed"
