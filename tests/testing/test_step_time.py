"""Step code's own sleeps and timeouts run on the simulation's clock, on both
backends: a back-off or a poll is simulated (it was reported ``stuck`` and
cancelled), a 30 s sleep costs no wall time, ``fail_after`` fires at its
virtual deadline, and a step timer due at the same time as one of the run's
is a decision the scheduler makes both ways.  A step blocked on what the
simulation cannot drive is one clear error naming the step."""

from __future__ import annotations

import socket

import anyio
import pytest

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.errors import WaitTimeoutError
from anyflow.testing import Schedule, SimulationError, Simulator, simulate

pytestmark = pytest.mark.anyio


class BackOff(Workflow):
    """Polls a fake service that answers on its third call, backing off."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def ready(self) -> bool:
        self.calls += 1
        return self.calls >= 3

    @step
    async def poll(self, ev: StartEvent, ctx: Context) -> StopEvent:
        started = anyio.current_time()
        delay = 0.001
        while not self.ready():
            await anyio.sleep(delay)
            delay *= 1000
        await ctx.store.set("polls", self.calls)
        return StopEvent(result=anyio.current_time() - started)


async def test_a_step_that_backs_off_is_simulated_not_stuck() -> None:
    simulation = await simulate(BackOff())
    assert not simulation.stuck
    # 0.001 s then 1 s, on the loop's clock as the step saw it.
    assert simulation.result == pytest.approx(1.001)
    assert [t for t in simulation.trace if t.startswith("time")] == [
        "time 0.001s in step code",
        "time 1.001s in step code",
    ]


class SlowService(Workflow):
    @step
    async def fetch(self, ev: StartEvent) -> StopEvent:
        with anyio.fail_after(10):
            await anyio.sleep(30)  # the fake service answers after 30 s
        return StopEvent(result="answered")


async def test_fail_after_in_a_step_fires_at_its_virtual_deadline() -> None:
    simulation = await simulate(SlowService())
    with pytest.raises(TimeoutError):
        simulation.result  # noqa: B018
    assert "time 10s in step code" in simulation.trace
    assert not simulation.stuck


class Answer(Event):
    text: str


class Deadline(Workflow):
    """Asks, and waits 30 s for the answer that a helper sends after sleeping
    30 s: in time or not, depending on which of the two timers comes first.
    The bug: the team assumed 'at 30 s' is in time."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(Answer, timeout=30)
        return StopEvent(result=answer.text)

    @step
    async def helper(self, ev: StartEvent, ctx: Context) -> None:
        await anyio.sleep(30)
        ctx.send_event(Answer(text="in time"))


async def test_a_step_timer_and_a_run_timer_due_together_are_explored_both_ways() -> None:
    outcomes = set()
    traces = set()
    for first in range(4):
        simulation = await simulate(Deadline(), schedule=Schedule((first, first, first)))
        traces.add(tuple(t for t in simulation.trace if t.startswith("time")))
        try:
            outcomes.add(simulation.result)
        except WaitTimeoutError:
            outcomes.add("timed out")
    assert outcomes == {"in time", "timed out"}
    # Whichever timer fires first decides; the run ends before the other.
    assert traces == {("time 30s",), ("time 30s in step code",)}
    # The same schedule, the same run.
    again = [await simulate(Deadline(), schedule=Schedule((1, 1, 1))) for _ in range(2)]
    assert again[0].ticks == again[1].ticks


class Gated(Workflow):
    def __init__(self, wait: object) -> None:
        super().__init__()
        self.wait = wait

    @step
    async def fetch(self, ev: StartEvent) -> StopEvent:
        await self.wait()  # type: ignore[operator]
        return StopEvent(result="fetched")


async def test_a_step_blocked_on_an_event_from_outside_is_a_clear_error() -> None:
    gate = anyio.Event()
    with pytest.raises(SimulationError, match=r"^step 'fetch' \(worker 0\) of Gated is blocked"):
        await simulate(Gated(gate.wait))


async def test_a_step_blocked_on_a_socket_is_a_clear_error() -> None:
    left, right = socket.socketpair()
    with left, right, pytest.raises(SimulationError, match="real I/O"):
        await simulate(Gated(lambda: anyio.wait_readable(left)))


async def test_one_simulation_at_a_time_per_event_loop() -> None:
    async with Simulator(BackOff()):
        with pytest.raises(SimulationError, match="one after the other"):
            await simulate(BackOff())
    # The loop has its own clock back: real time passes again.
    before = anyio.current_time()
    await anyio.sleep(0.001)
    assert anyio.current_time() > before
