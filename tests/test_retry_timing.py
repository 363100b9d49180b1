"""Retry timing as llama-index-workflows gives it: a delivery's elapsed time
counts from its first attempt's start (for ``ctx.retry_info()``, the retry
policy and ``StepFailedEvent``), and failures carry timezone-aware UTC times.

Time is virtual here (``anyflow.testing.virtual_time``), so the seconds are exact.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    catch_error,
    step,
)
from anyflow.retry_policy import retry_policy, stop_after_delay, wait_fixed
from anyflow.serialization import decode_event, encode_event
from anyflow.testing import virtual_time

if TYPE_CHECKING:
    from anyflow.retry import RetryInfo

pytestmark = pytest.mark.anyio


class SlowFlaky(Workflow):
    """Each attempt takes 10 s and the first two fail; retries wait 5 s."""

    def __init__(self) -> None:
        super().__init__(timeout=3600)
        self.seen: list[RetryInfo] = []

    @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=3))
    async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.seen.append(ctx.retry_info())
        await anyio.sleep(10)
        if ctx.retry_info().attempt < 3:
            raise ConnectionError("busy")
        return StopEvent(result="done")


async def test_retry_info_counts_from_the_first_attempts_start() -> None:
    wf = SlowFlaky()
    with virtual_time():
        assert await wf.run() == "done"
    first, second, third = wf.seen
    # Attempts start at 0, 15 and 30; they fail at 10 and 25.
    assert (first.retry_number, first.elapsed_seconds, first.last_failed_at) == (0, 0.0, None)
    assert first.last_exception is None
    assert (second.retry_number, second.elapsed_seconds) == (1, 15.0)
    assert (third.retry_number, third.elapsed_seconds) == (2, 30.0)
    assert isinstance(third.last_exception, ConnectionError)
    assert second.last_failed_at is not None
    assert third.last_failed_at is not None
    assert second.last_failed_at.tzinfo is timezone.utc
    assert third.last_failed_at - second.last_failed_at == timedelta(seconds=15)


async def test_elapsed_seconds_is_read_when_asked() -> None:
    asked: list[float] = []

    class Twice(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=2))
        async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
            await anyio.sleep(10)
            asked.append(ctx.retry_info().elapsed_seconds)
            if ctx.retry_info().attempt == 1:
                raise ConnectionError("busy")
            return StopEvent()

    with virtual_time():
        await Twice(timeout=3600).run()
    # The first attempt reads 0.0, as in llama-index-workflows; the second,
    # started at 15, reads 25 ten seconds later.
    assert asked == [0.0, 25.0]


class Recording:
    """A policy that waits 5 s and stops after 20 s, noting the elapsed times
    it is given."""

    def __init__(self) -> None:
        self.elapsed: list[float] = []
        self.policy = retry_policy(wait=wait_fixed(5), stop=stop_after_delay(20))

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        self.elapsed.append(elapsed_time)
        return self.policy.next(elapsed_time, attempts, error, seed=seed)


async def test_the_retry_policy_counts_from_the_first_attempts_start() -> None:
    policy = Recording()
    attempts: list[int] = []

    class Limited(Workflow):
        @step(retry_policy=policy)
        async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
            attempts.append(ctx.retry_info().attempt)
            await anyio.sleep(10)
            raise ConnectionError("down")

    with virtual_time(), pytest.raises(ConnectionError):
        await Limited(timeout=3600).run()
    # Failures at 10 (elapsed 10 < 20: retry at 15) and at 25 (elapsed 25:
    # stop).  Counted from the first failure they would have been 0 and 15,
    # and a third attempt would have run.
    assert policy.elapsed == [10.0, 25.0]
    assert attempts == [1, 2]


class Caught(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=2))
    async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await anyio.sleep(10)
        raise ValueError(f"bad:{ctx.retry_info().attempt}")

    @catch_error(for_steps=["call"])
    async def recover(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result=ev)


async def test_step_failed_event_tells_how_long_and_when() -> None:
    with virtual_time():
        before = datetime.now(timezone.utc)
        ev = await Caught(timeout=3600).run()
    assert isinstance(ev, StepFailedEvent)
    assert (ev.attempts, ev.exception_message) == (2, "bad:2")
    assert ev.elapsed_seconds == 25.0  # first attempt at 0, final failure at 25
    assert ev.failed_at is not None
    assert ev.failed_at.tzinfo is timezone.utc
    assert ev.failed_at - before >= timedelta(seconds=25)
    assert ev.failed_at == datetime.fromtimestamp(ev.failed_at_timestamp or 0, timezone.utc)
    # Saved and read back (a journal, a saved context), the times stay.
    again = decode_event(json.loads(json.dumps(encode_event(ev))))
    assert (again.elapsed_seconds, again.failed_at) == (25.0, ev.failed_at)


def test_a_step_failed_event_written_before_these_fields_reads_and_is_written_alike() -> None:
    data = {
        "__anyflow_event__": "anyflow.events:StepFailedEvent",
        "fields": {
            "step_name": "call",
            "input_event": {"__anyflow_event__": "anyflow.events:StartEvent", "fields": {}},
            "exception_type": "ValueError",
            "exception_message": "bad",
            "attempts": 1,
        },
    }
    ev = decode_event(data)
    assert (ev.elapsed_seconds, ev.failed_at_timestamp, ev.failed_at) == (0.0, None, None)
    assert encode_event(ev) == data


class WaitsAnHour(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=3600, maximum_attempts=2))
    async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
        info = ctx.retry_info()
        if info.attempt == 1:
            await anyio.sleep(10)
            raise ConnectionError("later")
        return StopEvent(result=(info.elapsed_seconds, info.last_failed_at))


async def test_a_saved_pending_retry_keeps_its_times_and_a_new_process_forgets_them() -> None:
    with virtual_time() as clock:
        async with BasicRuntime() as runtime:
            handler = WaitsAnHour().run(runtime=runtime)
            await clock.advance(60)  # failed at 10; the retry is due at 3610
            data = json.loads(json.dumps(handler.ctx.to_dict()))
            await handler.cancel_run()
    (retrying,) = data["run"]["retrying"]
    delivery: dict[str, Any] = retrying["delivery"]
    assert delivery["last_failed_at"] - delivery["first_started_at"] == 10.0
    assert delivery["first_failed_at"] == delivery["last_failed_at"]
    # Resumed elsewhere, the run has another clock: those times mean nothing
    # there, so the delivery's elapsed time counts again from its next attempt.
    wf = WaitsAnHour()
    with virtual_time():
        assert await wf.run(ctx=Context.from_dict(wf, data)) == (0.0, None)
