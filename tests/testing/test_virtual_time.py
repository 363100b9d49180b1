"""virtual_time(): the event loop's clock stands still while a task can run and
jumps to the next timer once every task waits, the same on asyncio and trio;
a run's timers (its timeout, retry delays, wait and step timeouts) are on it."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    HumanResponseEvent,
    StartEvent,
    StopEvent,
    WaitTimeoutError,
    Workflow,
    step,
)
from anyflow.testing import SimulationError, simulate, virtual_time

pytestmark = pytest.mark.anyio


async def test_timers_fire_in_order_at_their_exact_virtual_times() -> None:
    fired: list[tuple[str, float]] = []
    with virtual_time() as clock:

        async def sleeper(name: str, seconds: float) -> None:
            await anyio.sleep(seconds)
            fired.append((name, clock.now()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, "hour", 3600)
            tg.start_soon(sleeper, "minute", 60)
            tg.start_soon(sleeper, "second", 1)
        with anyio.move_on_after(30) as scope:
            await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert clock.now() == 3630
        assert anyio.current_time() == clock.start + 3630
    assert fired == [("second", 1), ("minute", 60), ("hour", 3600)]


async def test_time_stands_still_while_a_task_can_run() -> None:
    with virtual_time() as clock:
        woke_at: list[float] = []

        async def sleeper() -> None:
            await anyio.sleep(10)
            woke_at.append(clock.now())

        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            for _ in range(100):  # busy, never waiting: no time passes
                await anyio.lowlevel.checkpoint()
            assert clock.now() == 0
        assert woke_at == [10]


async def test_a_thread_runs_under_virtual_time() -> None:
    with virtual_time() as clock:
        assert await anyio.to_thread.run_sync(sum, [1, 2, 3]) == 6
        await clock.advance(5)
        assert clock.now() == 5


class Flaky(Workflow):
    """Fails twice, with an hour between attempts."""

    def __init__(self) -> None:
        super().__init__(timeout=24 * 3600)
        self.attempts: list[float] = []

    @step(retry_policy=ConstantDelayRetryPolicy(delay=3600, maximum_attempts=3))
    async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.attempts.append(anyio.current_time())
        if ctx.retry_info().attempt < 3:
            raise ConnectionError("try again in an hour")
        return StopEvent(result="done")


async def test_retry_delays_pass_on_the_virtual_clock() -> None:
    wf = Flaky()
    with virtual_time() as clock:
        assert await wf.run() == "done"
        assert clock.now() == 7200
    assert [t - clock.start for t in wf.attempts] == [0, 3600, 7200]


class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(HumanResponseEvent, timeout=30)
        return StopEvent(result=answer.response)


async def test_advance_lets_the_run_time_out_on_the_way() -> None:
    with virtual_time() as clock:
        async with BasicRuntime() as runtime:
            handler = Ask().run(runtime=runtime)
            await clock.advance(29)
            assert not handler.is_done()
            await clock.advance(2)  # the wait's timeout, at 30 s, is on the way
            assert handler.is_done()
            assert isinstance(handler.exception(), WaitTimeoutError)
            assert clock.now() == 31

    with virtual_time() as clock:
        async with BasicRuntime() as runtime:
            handler = Ask().run(runtime=runtime)
            await clock.advance(29)
            handler.send_event(HumanResponseEvent(response="just in time"))
            assert await handler == "just in time"
            assert clock.now() == 29


async def test_the_loop_gets_its_own_clock_back() -> None:
    with virtual_time() as clock:
        await clock.advance(3600)
    # Real time passes again, and a virtual hour did not.
    before = anyio.current_time()
    await anyio.sleep(0.001)
    assert before < anyio.current_time() < clock.start + 3600


async def test_blocks_do_not_nest_nor_hold_a_simulation() -> None:
    with virtual_time():
        with (
            pytest.raises(
                RuntimeError,
                match=r"^cannot start virtual time here: this event loop already runs on "
                r"virtual time \(virtual_time\(\) blocks do not nest",
            ),
            virtual_time(),
        ):
            pass  # pragma: no cover
        with pytest.raises(SimulationError, match="already runs on virtual time"):
            await simulate(Ask())
    with virtual_time() as clock:  # free again
        assert clock.now() == 0


def test_virtual_time_needs_a_running_event_loop() -> None:
    with (
        pytest.raises(RuntimeError, match=r"needs a running asyncio or trio event loop, not none"),
        virtual_time(),
    ):
        pass  # pragma: no cover
