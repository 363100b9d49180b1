"""replay() and replay_journal(): a recorded run, rebuilt and shown tick by tick."""

from __future__ import annotations

import pytest

from anyflow import HumanResponseEvent, InputRequiredEvent
from anyflow._core.state import RunStatus
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.testing import replay, replay_journal, simulate

from .test_simulate import Ask, Race

pytestmark = pytest.mark.anyio


async def test_a_simulated_run_replays_to_the_same_states() -> None:
    simulation = await simulate(Race(), seed=3)
    replayed = replay(Race(), simulation.ticks)
    assert len(replayed) == len(simulation.ticks)
    assert replayed[-1].state.status is RunStatus.COMPLETED
    assert replayed.state_at(-1).status is RunStatus.NOT_STARTED
    middle = replayed.show(3)
    assert middle.startswith("after tick 3 ")
    assert "status: running" in middle
    assert "executing: work#" in replayed.show(1)
    assert "status: completed" in replayed.show()


async def test_a_simulation_replays_with_its_store_as_each_tick_was_recorded() -> None:
    """docs/testing.md shows tick 5 of this run: by the time the first
    worker's result is recorded, all three have read the list before any
    wrote it back, and two numbers are lost."""
    simulation = await simulate(Race())
    replayed = replay(Race(), simulation)
    assert [step.store for step in replayed][:5] == [{}] * 5
    assert replayed[5].store == {"seen": [2]}
    assert replayed.show(5) == (
        "after tick 5 StepCompleted at t=0:\n"
        "  status: running\n"
        "  executing: work#2 on Job (event 2, attempt 1)\n"
        "  executing: work#3 on Job (event 3, attempt 1)\n"
        "  executing: join#4 on Done (event 4, attempt 1)\n"
        "  store seen: [2]"
    )
    assert replayed.show(0).endswith("  store: (empty)")
    # Ticks alone (a recorded list) replay without a store.
    assert replay(Race(), simulation.ticks)[5].store is None
    assert "store" not in replay(Race(), simulation.ticks).show(5)


async def test_a_tick_that_does_not_fit_is_named() -> None:
    simulation = await simulate(Race(), seed=3)
    with pytest.raises(ValueError, match=r"tick 0 \(EventSent.*before RunStarted"):
        replay(Race(), simulation.ticks[1:2])


async def test_a_durable_run_replays_from_its_journal_while_it_waits() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as durable:
        handler = Ask().run(run_id="a", runtime=durable)
        async for stored in durable.events("a"):
            if isinstance(stored.event, InputRequiredEvent):
                break
        replayed = await replay_journal(store, "a", Ask())
        assert "waiting: ask#0 for HumanResponseEvent until t=" in replayed.show()
        await handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "yes"
    replayed = await replay_journal(store, "a", Ask())
    assert replayed[-1].state.status is RunStatus.COMPLETED
