"""The runtime interface: decorators see every tick, and the ticks are the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    HumanResponseEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowIdleEvent,
    step,
)
from anyflow.runtime import (
    ExternalRunAdapter,
    InternalRunAdapter,
    InternalRunAdapterDecorator,
    RuntimeDecorator,
)
from anyflow.runtime.vocabulary import (
    Completed,
    EventCollected,
    RunStarted,
    RunState,
    RunStatus,
    StartWorker,
    StepCompleted,
    Tick,
    reduce,
)

from .test_context import FanOut

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyflow.runtime.vocabulary import Command

pytestmark = pytest.mark.anyio


class Recording(RuntimeDecorator):
    """Records every tick each run commits, and every event it publishes."""

    def __init__(self) -> None:
        super().__init__(BasicRuntime())
        self.ticks: dict[str, list[Tick]] = {}
        self.published: dict[str, list[Event]] = {}

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        ticks = self.ticks.setdefault(run_id, [])
        published = self.published.setdefault(run_id, [])

        class Recorder(InternalRunAdapterDecorator):
            async def on_ticks(self, batch: Sequence[Tick], commands: Sequence[Command]) -> None:
                ticks.extend(batch)
                await super().on_ticks(batch, commands)

            def publish(self, event: Event) -> None:
                published.append(event)
                super().publish(event)

        return Recorder(internal), external


async def test_a_decorator_observes_every_tick_and_the_ticks_replay_the_run() -> None:
    wf = FanOut()
    async with Recording() as runtime:
        handler = wf.run(n=12, runtime=runtime, run_id="r1")
        assert await handler == [i * 10 for i in range(12)]
    ticks = runtime.ticks["r1"]
    assert isinstance(ticks[0], RunStarted)
    # one fan step, 12 work steps, 12 gather steps (the last returns StopEvent)
    assert sum(isinstance(t, StepCompleted) for t in ticks) == 25
    assert sum(isinstance(t, EventCollected) for t in ticks) == 12
    assert runtime.published["r1"] == [StopEvent(result=[i * 10 for i in range(12)])]

    # Replaying the journal through the pure reducer gives the same run.
    state = RunState.initial(wf._spec)
    started = 0
    for tick in ticks:
        state, commands = reduce(state, tick)
        started += sum(isinstance(c, StartWorker) for c in commands)
    assert state.status is RunStatus.COMPLETED
    assert state.outcome == Completed(StopEvent(result=[i * 10 for i in range(12)]))
    assert started == 25
    assert not state.collections  # every collected Result was handed out


async def test_runs_keep_their_own_ids_and_ticks() -> None:
    async with Recording() as runtime:
        first = FanOut().run(n=2, runtime=runtime, run_id="a")
        second = FanOut().run(n=3, runtime=runtime, run_id="b")
        assert (await first, await second) == ([0, 10], [0, 10, 20])
    assert first.run_id == "a"
    assert first.ctx.run_id == "a"
    assert {t.start_event.n for t in runtime.ticks["a"] if isinstance(t, RunStarted)} == {2}
    assert {t.start_event.n for t in runtime.ticks["b"] if isinstance(t, RunStarted)} == {3}


async def test_waits_retries_and_timers_work_when_every_tick_goes_through_the_adapter() -> None:
    # A decorator that observes ticks switches the driver from applying
    # workers' ticks inline to the write-ahead path: the features must not notice.
    from anyflow import (
        ConstantDelayRetryPolicy,
        HumanResponseEvent,
        InputRequiredEvent,
        Workflow,
        step,
    )

    class Flow(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2), timeout=30)
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            answer = await ctx.wait_for_event(
                HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ok?")
            )
            if ctx.retry_info().attempt == 1:
                raise ConnectionError("flaky")
            return StopEvent(result=answer.response)

    wf = Flow()
    async with Recording() as runtime:
        handler = wf.run(runtime=runtime, run_id="w")
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "yes"
    state = RunState.initial(wf._spec)
    for tick in runtime.ticks["w"]:
        state, _ = reduce(state, tick)
    assert state.outcome == Completed(StopEvent(result="yes"))


class WaitForever(Workflow):
    @step(num_workers=1)
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.wait_for_event(HumanResponseEvent)
        return StopEvent()


@pytest.mark.parametrize("runtime_class", [BasicRuntime, Recording])
async def test_leaving_the_runtime_while_a_step_waits_ends_at_once(
    runtime_class: type[BasicRuntime] | type[Recording],
) -> None:
    # When every tick goes through the adapter, a waiting step that is cancelled
    # with its run must not wait for a tick that no one will process any more.
    with anyio.fail_after(10):
        async with runtime_class() as runtime:
            handler = WaitForever().run(runtime=runtime)
            async for ev in handler.stream_events(expose_internal=True):
                if isinstance(ev, WorkflowIdleEvent):
                    break
    assert isinstance(handler.exception(), WorkflowCancelledByUser)
