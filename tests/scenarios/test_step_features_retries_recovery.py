"""A payment pipeline against a flaky gateway: retry policies, ctx.retry_info(),
@catch_error fallbacks, per-step and per-run timeouts."""

from __future__ import annotations

from typing import ClassVar

import anyio
import anyio.lowlevel
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    ExponentialBackoffRetryPolicy,
    RetryPolicy,
    StartEvent,
    StepFailedEvent,
    StepTimeoutError,
    StopEvent,
    Workflow,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
    WorkflowTimeoutError,
    catch_error,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class FlakyGateway:
    """Raises the queued errors one per call, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.raised: list[Exception] = []
        self.calls = 0

    async def charge(self, order_id: str, cents: int) -> str:
        self.calls += 1
        await anyio.lowlevel.checkpoint()  # a real call would yield to the loop here
        if self.errors:
            error = self.errors.pop(0)
            self.raised.append(error)
            raise error
        return f"receipt:{order_id}:{cents}"


class Charge(Event):
    order_id: str
    cents: int


def payment_flow(policy: RetryPolicy | None, gateway: FlakyGateway) -> Workflow:
    class Payment(Workflow):
        attempts_seen: ClassVar[list[tuple[int, str | None]]] = []

        @step
        async def checkout(self, ev: StartEvent) -> Charge:
            return Charge(order_id=ev.order_id, cents=ev.cents)

        @step(retry_policy=policy)
        async def pay(self, ev: Charge, ctx: Context) -> StopEvent:
            info = ctx.retry_info()
            last = None if info.last_exception is None else repr(info.last_exception)
            self.attempts_seen.append((info.attempt, last))
            return StopEvent(result=await gateway.charge(ev.order_id, ev.cents))

    Payment.attempts_seen = []
    return Payment(timeout=10)


async def test_exponential_backoff_retries_until_the_gateway_answers() -> None:
    gateway = FlakyGateway(ConnectionError("reset 1"), ConnectionError("reset 2"))
    wf = payment_flow(
        ExponentialBackoffRetryPolicy(
            initial_delay=0, multiplier=2, max_delay=0, maximum_attempts=5
        ),
        gateway,
    )

    result = await wf.run(order_id="o-1", cents=1999)

    assert result == "receipt:o-1:1999"
    assert gateway.calls == 3
    assert wf.attempts_seen == [  # type: ignore[attr-defined]
        (1, None),
        (2, "ConnectionError('reset 1')"),
        (3, "ConnectionError('reset 2')"),
    ]


async def test_exhausted_retries_fail_the_run_with_the_steps_own_exception() -> None:
    gateway = FlakyGateway(*(ConnectionError(f"reset {i}") for i in range(1, 10)))
    wf = payment_flow(
        ExponentialBackoffRetryPolicy(initial_delay=0, maximum_attempts=3, jitter=True), gateway
    )

    seen = []

    async def watch() -> None:
        async with wf.run(order_id="o-2", cents=500) as handler:
            async for ev in handler.stream_events():
                seen.append(ev)
            await handler

    with pytest.raises(ConnectionError) as info:
        await watch()

    assert gateway.calls == 3
    assert info.value is gateway.raised[-1]  # the very exception, not a wrapper
    assert any("pay" in note for note in info.value.__notes__)
    last = seen[-1]
    assert isinstance(last, WorkflowFailedEvent)
    assert (last.step_name, last.exception_type, last.exception_message, last.attempts) == (
        "pay",
        "ConnectionError",
        "reset 3",
        3,
    )


class RetryOnlyNetworkErrors:
    """A user-written policy: retry connection problems, never a declined card."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self.asked: list[tuple[int, str]] = []

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        self.asked.append((attempts, type(error).__name__))
        if isinstance(error, ConnectionError) and attempts < self.attempts:
            return 0
        return None


class CardDeclined(Exception):
    pass


async def test_a_custom_policy_retries_network_errors_but_not_a_declined_card() -> None:
    policy = RetryOnlyNetworkErrors(attempts=5)
    assert isinstance(policy, RetryPolicy)  # the protocol, structurally
    gateway = FlakyGateway(ConnectionResetError("reset"), CardDeclined("insufficient funds"))
    wf = payment_flow(policy, gateway)

    with pytest.raises(CardDeclined, match="insufficient funds"):
        await wf.run(order_id="o-3", cents=100)

    assert gateway.calls == 2  # no retry after the decline
    assert policy.asked == [(1, "ConnectionResetError"), (2, "CardDeclined")]


async def test_a_custom_policy_lets_the_payment_succeed_after_network_errors() -> None:
    policy = RetryOnlyNetworkErrors(attempts=5)
    gateway = FlakyGateway(ConnectionError("a"), ConnectionError("b"), ConnectionError("c"))
    wf = payment_flow(policy, gateway)

    assert await wf.run(order_id="o-4", cents=100) == "receipt:o-4:100"
    assert [attempt for attempt, _ in wf.attempts_seen] == [1, 2, 3, 4]  # type: ignore[attr-defined]


def test_builtin_policies_compute_the_documented_delays() -> None:
    error = ConnectionError("x")
    backoff = ExponentialBackoffRetryPolicy(
        initial_delay=1, multiplier=2, max_delay=5, maximum_attempts=5, jitter=False
    )
    assert [backoff.next(0.0, n, error) for n in range(1, 6)] == [1, 2, 4, 5, None]

    constant = ConstantDelayRetryPolicy(delay=2, maximum_attempts=3)
    assert [constant.next(0.0, n, error) for n in range(1, 4)] == [2, 2, None]

    jittered = ExponentialBackoffRetryPolicy(
        initial_delay=1, multiplier=2, max_delay=5, maximum_attempts=5, jitter=True
    )
    first = [jittered.next(0.0, n, error, seed=7) for n in range(1, 5)]
    again = [jittered.next(0.0, n, error, seed=7) for n in range(1, 5)]
    assert first == again  # a replay waits the same
    for delay, cap in zip(first, [1, 2, 4, 5], strict=True):
        assert delay is not None
        assert 0 <= delay <= cap
    assert jittered.next(0.0, 5, error, seed=7) is None


# --------------------------------------------------------------------------
# @catch_error: a fallback once the retries are exhausted
# --------------------------------------------------------------------------


class Outcome(Event):
    order_id: str
    status: str


class PaymentBatch(Workflow):
    """Pays several orders; a failed payment is deferred, up to two of them."""

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.failures: list[StepFailedEvent] = []

    @step
    async def split(self, ev: StartEvent, ctx: Context) -> Charge | None:
        await ctx.store.set("orders", len(ev.orders))
        for order_id in ev.orders:
            ctx.send_event(Charge(order_id=order_id, cents=100))
        return None

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def pay(self, ev: Charge) -> Outcome:
        if ev.order_id.startswith("down"):
            raise ConnectionError(f"gateway down for {ev.order_id}")
        return Outcome(order_id=ev.order_id, status="paid")

    @step
    async def summarize(self, ev: Outcome, ctx: Context) -> StopEvent | None:
        outcomes = ctx.collect_events(ev, [Outcome] * await ctx.store.get("orders"))
        if outcomes is None:
            return None
        return StopEvent(result=sorted((o.order_id, o.status) for o in outcomes))

    @catch_error(for_steps=["pay"], max_recoveries=2)
    async def defer(self, ev: StepFailedEvent) -> Outcome:
        self.failures.append(ev)
        return Outcome(order_id=ev.input_event.order_id, status="deferred")


async def test_failed_payments_are_deferred_by_the_error_handler() -> None:
    wf = PaymentBatch(timeout=10)

    result = await wf.run(orders=["a", "down-1", "b"])

    assert result == [("a", "paid"), ("b", "paid"), ("down-1", "deferred")]
    [failure] = wf.failures
    assert failure.step_name == "pay"
    assert failure.input_event == Charge(order_id="down-1", cents=100)
    assert failure.exception_type == "ConnectionError"
    assert failure.exception_message == "gateway down for down-1"
    assert failure.attempts == 2  # the handler runs only after the retries


async def test_more_failures_than_max_recoveries_fail_the_run() -> None:
    wf = PaymentBatch(timeout=10)
    down = {"down-1", "down-2", "down-3"}

    with pytest.raises(ConnectionError, match="gateway down for down-") as info:
        await wf.run(orders=["down-1", "down-2", "down-3", "a"])

    # retries interleave with the next orders, so any of the three may be the
    # failure too many; it fails the run and never reaches the handler, which got
    # (at most) the two others
    failed = str(info.value).splitlines()[0].removeprefix("gateway down for ")
    assert failed in down
    handled = [f.input_event.order_id for f in wf.failures]
    assert len(handled) <= 2
    assert set(handled) <= down - {failed}


class Quote(Event):
    amount: int


class PricingWithFallback(Workflow):
    @step
    async def quote(self, ev: StartEvent) -> Quote:
        if ev.currency != "EUR":
            raise LookupError(f"no rates for {ev.currency}")
        return Quote(amount=ev.amount)

    @step
    async def finish(self, ev: Quote) -> StopEvent:
        return StopEvent(result={"amount": ev.amount, "source": "live"})

    @catch_error
    async def use_list_price(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(
            result={
                "amount": ev.input_event.amount,
                "source": f"list price ({ev.exception_message})",
            }
        )


async def test_a_catch_all_handler_can_end_the_run_with_a_fallback_result() -> None:
    wf = PricingWithFallback(timeout=10)

    assert await wf.run(amount=10, currency="EUR") == {"amount": 10, "source": "live"}
    assert await wf.run(amount=10, currency="XAU") == {
        "amount": 10,
        "source": "list price (no rates for XAU)",
    }


class ScopedHandler(Workflow):
    @step
    async def parse(self, ev: StartEvent) -> Quote:
        raise ValueError("malformed order")

    @step
    async def price(self, ev: Quote) -> StopEvent:
        raise LookupError("no rates")

    @catch_error(for_steps=["price"])
    async def price_fallback(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result="fallback")


async def test_a_handler_for_some_steps_does_not_hide_failures_of_the_others() -> None:
    with pytest.raises(ValueError, match="malformed order"):
        await ScopedHandler(timeout=10).run()


# --------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------


class InventoryLookup(Workflow):
    """The first call to the warehouse hangs; the retry is answered at once."""

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.seen: list[tuple[int, BaseException | None]] = []

    @step(timeout=5, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=5))
    async def lookup(self, ev: StartEvent, ctx: Context) -> StopEvent:
        info = ctx.retry_info()
        self.seen.append((info.attempt, info.last_exception))
        if info.attempt == 1:
            await anyio.sleep_forever()  # the warehouse never answers
        return StopEvent(result=f"{ev.sku}: 7 in stock")


async def test_a_timed_out_attempt_is_retried_and_the_retry_succeeds() -> None:
    wf = InventoryLookup(timeout=60)

    with virtual_time() as clock:
        assert await wf.run(sku="SKU-1") == "SKU-1: 7 in stock"
        assert clock.now() == 5  # the first attempt's timeout; the retry answered at once

    [(first, none), (second, timed_out)] = wf.seen
    assert (first, none, second) == (1, None, 2)
    assert isinstance(timed_out, StepTimeoutError)
    assert isinstance(timed_out, TimeoutError)
    assert str(timed_out).startswith("step 'lookup' took longer than its timeout of 5s (attempt 1)")


class HangingLookup(Workflow):
    @step(timeout=5, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def lookup(self, ev: StartEvent) -> StopEvent:
        await anyio.sleep_forever()
        return StopEvent(result=None)


async def test_a_step_that_always_times_out_fails_the_run_with_step_timeout_error() -> None:
    with virtual_time() as clock, pytest.raises(StepTimeoutError, match="lookup"):
        await HangingLookup(timeout=60).run()
    assert clock.now() == 10  # two attempts of 5 s


class StuckExport(Workflow):
    @step
    async def export(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Event())
        await anyio.sleep_forever()
        return StopEvent(result=None)


async def test_a_run_over_its_time_budget_ends_with_workflow_timeout_error() -> None:
    seen = []

    async def watch() -> None:
        async with StuckExport(timeout=30).run() as handler:
            async for ev in handler.stream_events():
                seen.append(ev)
            await handler

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await watch()

    assert clock.now() == 30
    assert seen == [Event(), WorkflowTimedOutEvent(timeout=30, active_steps=("export",))]


class QuoteService(Workflow):
    @step(timeout=5, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def live_quote(self, ev: StartEvent) -> StopEvent:
        await anyio.sleep_forever()  # the pricing service hangs
        return StopEvent(result=None)

    @catch_error(for_steps=["live_quote"])
    async def cached_quote(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result=(ev.step_name, ev.exception_type, ev.attempts, "cached price 9.99"))


async def test_an_error_handler_also_covers_attempts_that_timed_out() -> None:
    with virtual_time() as clock:
        result = await QuoteService(timeout=60).run()
        assert clock.now() == 10  # two attempts of 5 s

    assert result == ("live_quote", "StepTimeoutError", 2, "cached price 9.99")
