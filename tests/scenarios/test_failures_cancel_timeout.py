"""Flaky calls and retries, failures, cancellation and timeouts, as a caller sees them."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowHandler,
    WorkflowTimedOutEvent,
    WorkflowTimeoutError,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


async def stream_into(
    events: list[Event], handlers: list[WorkflowHandler], flow: Workflow, **fields: object
) -> None:
    """Run ``flow`` in a block, reading its whole stream into ``events``."""
    async with flow.run(**fields) as handler:
        handlers.append(handler)
        async for ev in handler.stream_events():
            events.append(ev)


class PaymentDeclinedError(Exception):
    """An exception type of the user's own, which must reach the caller as itself."""


class Order(Event):
    order_id: str
    amount: int


class FlakyPayments(Workflow):
    """A payment gateway that fails a configurable number of times before succeeding."""

    def __init__(self, failures: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.failures = failures
        self.attempts: list[tuple[int, int]] = []

    @step
    async def receive(self, ev: StartEvent) -> Order:
        return Order(order_id=ev.order_id, amount=ev.amount)

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
    async def charge(self, ev: Order, ctx: Context) -> StopEvent:
        info = ctx.retry_info()
        self.attempts.append((info.attempt, info.retry_number))
        if len(self.attempts) <= self.failures:
            raise PaymentDeclinedError(f"gateway said no to {ev.order_id}")
        return StopEvent(result=f"charged {ev.amount} for {ev.order_id}")


async def test_flaky_call_succeeds_on_a_retry() -> None:
    flow = FlakyPayments(failures=2, timeout=10)

    result = await flow.run(order_id="o-1", amount=42)

    assert result == "charged 42 for o-1"
    # attempt counts from 1, retry_number from 0 as in llama-index-workflows
    assert flow.attempts == [(1, 0), (2, 1), (3, 2)]


async def test_exhausted_retries_raise_the_original_exception_with_a_note() -> None:
    flow = FlakyPayments(failures=99, timeout=10)

    with pytest.raises(PaymentDeclinedError, match="gateway said no to o-2") as info:
        await flow.run(order_id="o-2", amount=1)

    assert type(info.value) is PaymentDeclinedError
    assert len(flow.attempts) == 3
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "charge" in notes


async def test_exhausted_retries_in_a_block_stream_then_raise_when_the_block_ends() -> None:
    flow = FlakyPayments(failures=99, timeout=10)
    events: list[Event] = []

    handlers: list[WorkflowHandler] = []

    with pytest.raises(PaymentDeclinedError) as info:
        await stream_into(events, handlers, flow, order_id="o-3", amount=1)

    assert "charge" in " ".join(getattr(info.value, "__notes__", []))
    [handler] = handlers
    assert handler.is_done()
    assert handler.exception() is info.value
    with pytest.raises(PaymentDeclinedError):
        handler.result()
    last = events[-1]
    assert isinstance(last, WorkflowFailedEvent)
    assert last.step_name == "charge"
    assert last.exception_type.endswith("PaymentDeclinedError")
    assert "o-3" in last.exception_message


async def test_a_failure_the_caller_handled_is_not_raised_again_by_the_block() -> None:
    flow = FlakyPayments(failures=99, timeout=10)

    async with flow.run(order_id="o-4", amount=1) as handler:
        with pytest.raises(PaymentDeclinedError) as info:
            await handler
    # only failures nobody looked at are raised when the block ends

    assert type(info.value) is PaymentDeclinedError
    assert handler.exception() is info.value


# -- cancellation ---------------------------------------------------------------------------


class Approval(Workflow):
    """Waits for a signal from outside the workflow (a webhook, a person, ...)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.signal = anyio.Event()
        self.waiting = anyio.Event()
        self.cleaned_up = False

    @step
    async def wait_for_signal(self, ev: StartEvent) -> StopEvent:
        try:
            self.waiting.set()
            await self.signal.wait()
        finally:
            self.cleaned_up = True
        return StopEvent(result="signalled")


async def test_cancel_run_from_outside_runs_finally_and_ends_the_stream() -> None:
    flow = Approval()
    events: list[Event] = []

    async with flow.run() as handler:
        await flow.waiting.wait()
        await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler
        async for ev in handler.stream_events():
            events.append(ev)

    assert flow.cleaned_up
    assert handler.is_done()
    assert isinstance(handler.exception(), WorkflowCancelledByUser)
    assert isinstance(events[-1], WorkflowCancelledEvent)


async def test_cancel_run_while_another_task_is_streaming() -> None:
    flow = Approval()
    events: list[Event] = []

    async def consume() -> None:
        async for ev in handler.stream_events():
            events.append(ev)

    async with flow.run() as handler, anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await flow.waiting.wait()
        await handler.cancel_run()

    assert flow.cleaned_up
    assert events
    assert isinstance(events[-1], WorkflowCancelledEvent)


async def test_raising_inside_the_block_cancels_the_run() -> None:
    class CallerGaveUpError(Exception):
        pass

    flow = Approval()

    handlers: list[WorkflowHandler] = []

    async def give_up() -> None:
        async with flow.run() as handler:
            handlers.append(handler)
            await flow.waiting.wait()
            raise CallerGaveUpError

    with pytest.raises(CallerGaveUpError):
        await give_up()

    assert flow.cleaned_up
    [handler] = handlers
    assert handler.is_done()
    events = [ev async for ev in handler.stream_events()]
    assert isinstance(events[-1], WorkflowCancelledEvent)


async def test_cancel_run_on_a_hosted_run() -> None:
    flow = Approval()
    async with BasicRuntime() as runtime:
        handler = flow.run(runtime=runtime)
        await flow.waiting.wait()
        await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler
        events = [ev async for ev in handler.stream_events()]

    assert flow.cleaned_up
    assert isinstance(events[-1], WorkflowCancelledEvent)


# -- timeouts -------------------------------------------------------------------------------


class Hang(Workflow):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.started = False
        self.cleaned_up = False

    @step
    async def forever(self, ev: StartEvent) -> StopEvent:
        self.started = True
        try:
            await anyio.Event().wait()
        finally:
            self.cleaned_up = True
        return StopEvent(result="never")


async def test_a_step_that_waits_forever_times_out() -> None:
    flow = Hang(timeout=30)

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await flow.run()

    assert clock.now() == 30
    assert flow.started
    assert flow.cleaned_up


async def test_a_timed_out_run_ends_the_stream_with_a_timed_out_event() -> None:
    flow = Hang(timeout=30)
    events: list[Event] = []

    handlers: list[WorkflowHandler] = []

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await stream_into(events, handlers, flow)

    assert clock.now() == 30
    assert flow.started
    assert flow.cleaned_up
    assert isinstance(handlers[0].exception(), WorkflowTimeoutError)
    assert events == [WorkflowTimedOutEvent(timeout=30, active_steps=("forever",))]


async def test_timeout_none_means_no_timeout() -> None:
    flow = Approval(timeout=None)

    async with flow.run() as handler:
        await flow.waiting.wait()
        await anyio.wait_all_tasks_blocked()
        assert not handler.is_done()
        flow.signal.set()
        assert await handler == "signalled"


# -- structured concurrency: a failing worker, an outer cancel scope, the runtime's exit -------


class Shard(Event):
    n: int


class OneBadShard(Workflow):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.started = 0
        self.cleaned_up = 0
        self.all_started = anyio.Event()

    @step
    async def fan_out(self, ev: StartEvent, ctx: Context) -> Shard | None:
        for n in range(8):
            ctx.send_event(Shard(n=n))
        return None

    @step(num_workers=8)
    async def work(self, ev: Shard) -> StopEvent:
        self.started += 1
        if self.started == 8:
            self.all_started.set()
        try:
            await self.all_started.wait()
            if ev.n == 5:
                raise PaymentDeclinedError(f"shard {ev.n}")
            await anyio.Event().wait()
        finally:
            self.cleaned_up += 1
        return StopEvent(result="unreachable")


async def test_one_failing_worker_fails_the_run_and_cancels_its_siblings() -> None:
    flow = OneBadShard(timeout=10)

    with pytest.raises(PaymentDeclinedError, match="shard 5") as info:
        await flow.run()

    assert "work" in " ".join(getattr(info.value, "__notes__", []))
    assert flow.started == 8
    assert flow.cleaned_up == 8


async def test_cancelling_the_callers_scope_cancels_the_run() -> None:
    flow = Approval()

    async def cancel_when_waiting(scope: anyio.CancelScope) -> None:
        await flow.waiting.wait()
        scope.cancel()

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            tg.start_soon(cancel_when_waiting, scope)
            await flow.run()
        assert scope.cancelled_caught

    assert flow.cleaned_up


async def test_leaving_the_runtime_leaves_no_run_behind() -> None:
    flow = Approval()
    async with BasicRuntime() as runtime:
        handler = flow.run(runtime=runtime)
        await flow.waiting.wait()

    assert flow.cleaned_up
    assert handler.is_done()


async def test_leaving_the_block_without_awaiting_waits_for_the_run() -> None:
    flow = Approval()
    async with flow.run() as handler:
        await flow.waiting.wait()
        flow.signal.set()

    assert handler.is_done()
    assert handler.exception() is None
    assert handler.result() == "signalled"


# -- retry timers, and errors raised by anyflow inside a step ---------------------------------


class SlowRetry(Workflow):
    """A retry policy with an hour's delay: the delay is a timer, not a sleep in the step."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.attempts: list[int] = []

    @step(retry_policy=ConstantDelayRetryPolicy(delay=3600, maximum_attempts=3))
    async def call(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.attempts.append(ctx.retry_info().attempt)
        raise PaymentDeclinedError("try again later")


async def test_a_timeout_cuts_a_pending_retry_delay_short() -> None:
    flow = SlowRetry(timeout=30)

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await flow.run()

    # no second attempt: the run ended 30 s into the hour-long delay
    assert clock.now() == 30
    assert flow.attempts == [1]


async def test_cancel_run_cuts_a_pending_retry_delay_short() -> None:
    flow = SlowRetry()

    async with flow.run() as handler:
        await anyio.wait_all_tasks_blocked()
        assert flow.attempts == [1]
        with anyio.fail_after(30):
            await handler.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler

    assert flow.attempts == [1]


class Audit(Event):
    entry: str


class Misrouted(Workflow):
    @step
    async def start(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.send_event(Audit(entry="nobody listens"))
        return StopEvent(result="unreachable")


async def test_sending_an_event_no_step_accepts_fails_the_sending_step() -> None:
    from anyflow import WorkflowRuntimeError

    with pytest.raises(WorkflowRuntimeError) as info:
        await Misrouted(timeout=10).run()

    assert "Audit" in str(info.value)
    assert "start" in " ".join(getattr(info.value, "__notes__", []))


class AnnotatedFailure(Workflow):
    @step
    async def enrich(self, ev: StartEvent) -> StopEvent:
        error = PaymentDeclinedError("card expired")
        error.__notes__ = ["customer=42"]  # add_note() needs Python 3.11
        raise error


async def test_the_users_own_notes_are_kept_next_to_the_step_note() -> None:
    with pytest.raises(PaymentDeclinedError) as info:
        await AnnotatedFailure(timeout=10).run()

    notes = info.value.__notes__
    assert notes[0] == "customer=42"
    assert any("enrich" in note for note in notes[1:])
