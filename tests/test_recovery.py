"""@catch_error, @step(timeout=...), and retries among concurrent workers."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StepFailedEvent,
    StepTimeoutError,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    catch_error,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Fallback(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def fetch(self, ev: StartEvent) -> StopEvent:
        raise Boom(f"service down for {ev.user}")

    @catch_error
    async def recover(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(
            result=(
                ev.step_name,
                ev.input_event.user,
                ev.exception_type,
                ev.exception_message,
                ev.attempts,
            )
        )


async def test_catch_error_turns_a_final_failure_into_a_fallback_result() -> None:
    assert await Fallback().run(user="ann") == ("fetch", "ann", "Boom", "service down for ann", 2)


async def test_max_recoveries_then_the_run_fails_with_the_original_exception() -> None:
    class Item(Event):
        n: int

    class Limited(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
            for n in range(3):
                ctx.send_event(Item(n=n))
            return None

        @step
        async def work(self, ev: Item) -> StopEvent:
            raise Boom(f"item {ev.n}")

        @catch_error(for_steps=["work"], max_recoveries=2)
        async def recover(self, ev: StepFailedEvent) -> None:
            return None

    with pytest.raises(Boom, match=r"^item 2"):
        await Limited().run()


async def test_a_specific_catcher_wins_over_a_catch_all() -> None:
    class Two(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            raise Boom("x")

        @catch_error
        async def everything(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent(result="catch-all")

        @catch_error(for_steps=["go"])
        async def just_go(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent(result="specific")

    assert await Two().run() == "specific"


def test_catcher_validation() -> None:
    # Refused when decorated, as in llama-index-workflows.
    with pytest.raises(
        WorkflowValidationError,
        match=r"^@catch_error handler 'recover' must accept StepFailedEvent as its event "
        r"parameter\. It takes StartEvent: write",
    ):

        class NotAcceptingFailures(Workflow):
            @step
            async def go(self, ev: StartEvent) -> StopEvent:
                return StopEvent()

            @catch_error
            async def recover(self, ev: StartEvent) -> StopEvent:
                return StopEvent()

    class UnknownStep(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["og"])
        async def recover(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"names 'og' in for_steps, but .* has no such step; its steps are: go, recover$",
    ):
        UnknownStep()
    with pytest.raises(TypeError, match=r"^for_steps takes a list of step names"):
        catch_error(for_steps="go")  # type: ignore[arg-type]


async def test_a_step_attempt_that_runs_too_long_fails_with_step_timeout() -> None:
    class Slow(Workflow):
        @step(timeout=10)
        async def go(self, ev: StartEvent) -> StopEvent:
            await anyio.sleep_forever()
            return StopEvent()

    with (
        virtual_time() as clock,
        pytest.raises(
            StepTimeoutError,
            match=r"^step .go. took longer than its timeout of 10s \(attempt 1\)\n",
        ),
    ):
        await Slow().run()
    assert clock.now() == 10


async def test_a_timed_out_attempt_is_retried() -> None:
    attempts: list[int] = []

    class SlowOnce(Workflow):
        @step(timeout=10, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            attempt = ctx.retry_info().attempt
            attempts.append(attempt)
            if attempt == 1:
                await anyio.sleep_forever()
            assert isinstance(ctx.retry_info().last_exception, StepTimeoutError)
            return StopEvent(result="second time lucky")

    with virtual_time() as clock:
        assert await SlowOnce().run() == "second time lucky"
        assert clock.now() == 10  # the first attempt's timeout; the second returned at once
    assert attempts == [1, 2]


async def test_a_retry_while_other_workers_of_the_step_run() -> None:
    class Item(Event):
        n: int

    class Done(Event):
        n: int

    release = anyio.Event()
    calls: dict[int, int] = {}

    class Busy(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
            for n in range(4):
                ctx.send_event(Item(n=n))
            return None

        @step(num_workers=2, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
        async def work(self, ev: Item, ctx: Context) -> Done:
            calls[ev.n] = calls.get(ev.n, 0) + 1
            if ev.n == 0 and calls[0] < 3:
                raise Boom("flaky")  # retried twice while item 1 holds the other worker
            if ev.n == 1:
                await release.wait()
            return Done(n=ev.n)

        @step
        async def gather(self, ev: Done, ctx: Context) -> StopEvent | None:
            if ev.n == 0:
                release.set()
            done = ctx.collect_events(ev, [Done] * 4)
            return StopEvent(result=sorted(d.n for d in done)) if done else None

    assert await Busy().run() == [0, 1, 2, 3]
    assert calls == {0: 3, 1: 1, 2: 1, 3: 1}


async def test_a_step_timeout_counts_from_when_the_callers_answer_arrives() -> None:
    from anyflow import HumanResponseEvent, InputRequiredEvent

    class Timed(Workflow):
        @step(timeout=10)
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            answer = await ctx.wait_for_event(HumanResponseEvent, waiter_event=InputRequiredEvent())
            await anyio.lowlevel.checkpoint()  # a checkpoint after the wait: must not time out
            return StopEvent(result=answer.response)

    async with Timed().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="in time"))
        assert await handler == "in time"


async def test_a_retry_policy_that_fails_gives_up_with_a_note() -> None:
    class Broken:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            raise ValueError("policy bug")

    class Flow(Workflow):
        @step(retry_policy=Broken())
        async def go(self, ev: StartEvent) -> StopEvent:
            raise Boom("boom")

    with pytest.raises(Boom) as info:
        await Flow().run()
    assert "raised ValueError('policy bug'), so it was not retried" in info.value.__notes__[0]
