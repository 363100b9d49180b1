"""Composed retry policies (anyflow.retry_policy): each part's meaning, the
operators, the policy they make, what @step refuses, and runs that retry with
them on both backends, simulated, journaled and with tenacity's own parts."""

from __future__ import annotations

import math
import random
import re
import typing
from datetime import timedelta
from typing import Any

import pytest

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow._core.commands import ScheduleTimer
from anyflow._core.ticks import StepFailed, TimerFired
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.retry import ConstantDelayRetryPolicy as RetryModuleConstant
from anyflow.retry_policy import (
    ComposedRetryPolicy,
    ConstantDelayRetryPolicy,
    ExponentialBackoffRetryPolicy,
    retry_all,
    retry_always,
    retry_any,
    retry_if_exception,
    retry_if_exception_cause_type,
    retry_if_exception_message,
    retry_if_exception_type,
    retry_if_not_exception_message,
    retry_if_not_exception_type,
    retry_never,
    retry_policy,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    stop_never,
    wait_chain,
    wait_combine,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_full_jitter,
    wait_incrementing,
    wait_none,
    wait_random,
    wait_random_exponential,
)
from anyflow.testing import Fault, replay_journal, simulate


def caused_by(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def implicitly_after(error: BaseException, context: BaseException) -> BaseException:
    error.__context__ = context
    return error


# ---------------------------------------------------------------------------
# Retry conditions: condition(error) -> retry it?
# ---------------------------------------------------------------------------

RETRY_CASES: list[tuple[Any, BaseException, bool]] = [
    (retry_if_exception_type(ConnectionError), ConnectionResetError("reset"), True),
    (retry_if_exception_type(ConnectionError), ValueError("bad"), False),
    (retry_if_exception_type((KeyError, ValueError)), ValueError("bad"), True),
    (retry_if_exception_type(), ValueError("anything"), True),
    (retry_if_not_exception_type(PermissionError), TimeoutError(), True),
    (retry_if_not_exception_type(PermissionError), PermissionError(), False),
    (retry_unless_exception_type(PermissionError), PermissionError(), False),
    (retry_unless_exception_type(PermissionError), OSError(), True),
    (retry_if_exception(lambda e: "rate" in str(e)), RuntimeError("rate limited"), True),
    (retry_if_exception(lambda e: "rate" in str(e)), RuntimeError("no"), False),
    (retry_if_exception_message(message="try later"), RuntimeError("try later"), True),
    (retry_if_exception_message(message="try later"), RuntimeError("try later!"), False),
    (retry_if_exception_message(match=r"HTTP 5\d\d"), RuntimeError("got HTTP 503"), True),
    (retry_if_exception_message(match=re.compile("^5")), RuntimeError("got 503"), False),
    (retry_if_not_exception_message(match="invalid key"), RuntimeError("invalid key"), False),
    (retry_if_not_exception_message(match="invalid key"), RuntimeError("timeout"), True),
    (
        retry_if_exception_cause_type(ConnectionError),
        caused_by(RuntimeError("wrapped"), ConnectionError()),
        True,
    ),
    (
        retry_if_exception_cause_type(ConnectionError),
        caused_by(RuntimeError(), caused_by(ValueError(), ConnectionError())),
        True,
    ),
    (retry_if_exception_cause_type(ConnectionError), ConnectionError(), False),
    (
        retry_if_exception_cause_type(ConnectionError),
        implicitly_after(RuntimeError(), ConnectionError()),
        False,
    ),
    (retry_always(), ValueError(), True),
    (retry_never(), ConnectionError(), False),
    (retry_any(retry_never(), retry_if_exception_type(KeyError)), KeyError(), True),
    (retry_any(), KeyError(), False),
    (retry_all(retry_always(), retry_if_exception_type(KeyError)), ValueError(), False),
    (retry_all(), KeyError(), True),
    (retry_if_exception_type(KeyError) | retry_if_exception_type(ValueError), ValueError(), True),
    (retry_if_exception_type(OSError) & retry_if_exception_message(match="5"), OSError("4"), False),
    (retry_if_exception_type(OSError) & retry_if_exception_message(match="5"), OSError("5"), True),
    ((lambda e: isinstance(e, KeyError)) | retry_never(), KeyError(), True),
    ((lambda e: True) & retry_never(), KeyError(), False),
]


@pytest.mark.parametrize(("condition", "error", "expected"), RETRY_CASES)
def test_retry_conditions(condition: Any, error: BaseException, expected: bool) -> None:
    assert condition(error) is expected


def test_operators_build_the_named_combinators() -> None:
    a, b = retry_if_exception_type(KeyError), retry_if_exception_type(ValueError)
    assert a | b == retry_any(a, b)
    assert a & b == retry_all(a, b)
    stop_a, stop_b = stop_after_attempt(3), stop_after_delay(10)
    assert stop_a | stop_b == stop_any(stop_a, stop_b)
    assert stop_a & stop_b == stop_all(stop_a, stop_b)
    assert wait_fixed(1) + wait_fixed(2) == wait_combine(wait_fixed(1), wait_fixed(2))
    assert sum([wait_fixed(1), wait_fixed(2), wait_fixed(3)])(0) == 6  # type: ignore[operator]


# ---------------------------------------------------------------------------
# Waits: wait(n) for retry n, counted from 0
# ---------------------------------------------------------------------------

WAIT_CASES: list[tuple[Any, list[float]]] = [
    (wait_fixed(2), [2, 2, 2]),
    (wait_fixed(timedelta(milliseconds=1500)), [1.5, 1.5]),
    (wait_none(), [0, 0]),
    (wait_exponential(), [1, 2, 4, 8, 16, 32, 60, 60]),
    (wait_exponential(multiplier=0.5, exp_base=3, max=10), [0.5, 1.5, 4.5, 10]),
    (wait_exponential(multiplier=1, min=3, max=5), [3, 3, 4, 5, 5]),
    (wait_exponential(multiplier=1, max=timedelta(seconds=3)), [1, 2, 3]),
    (wait_incrementing(start=1, increment=2, max=6), [1, 3, 5, 6]),
    (wait_incrementing(start=5, increment=-2), [5, 3, 1, 0, 0]),
    (wait_incrementing(), [0, 100, 200]),
    (wait_chain(wait_fixed(1), wait_fixed(2), wait_fixed(5)), [1, 2, 5, 5, 5]),
    (wait_chain(wait_fixed(1), wait_exponential(multiplier=1)), [1, 2, 4]),
    (wait_combine(wait_fixed(1), wait_incrementing(start=0, increment=1)), [1, 2, 3]),
    (wait_fixed(1) + wait_fixed(0.5) + wait_none(), [1.5, 1.5]),
]


@pytest.mark.parametrize(("wait", "delays"), WAIT_CASES)
def test_waits(wait: Any, delays: list[float]) -> None:
    assert [wait(n) for n in range(len(delays))] == pytest.approx(delays)


def test_exponential_waits_do_not_overflow() -> None:
    assert wait_exponential(max=30)(10_000) == 30
    assert wait_exponential(max=math.inf)(10_000) == math.inf
    assert wait_exponential_jitter(max=30)(10_000, seed=1) == 30


RANDOM_WAITS: list[tuple[Any, int, float, float]] = [
    # (wait, retry number, lowest, highest)
    (wait_random(1, 3), 0, 1, 3),
    (wait_random(min=timedelta(seconds=2), max=timedelta(seconds=2)), 4, 2, 2),
    (wait_random_exponential(multiplier=1, max=10), 0, 0, 1),
    (wait_random_exponential(multiplier=1, max=10), 3, 0, 8),
    (wait_random_exponential(multiplier=1, max=10), 9, 0, 10),
    (wait_full_jitter(multiplier=2, min=1), 2, 1, 8),
    (wait_exponential_jitter(initial=1, jitter=1), 0, 1, 2),
    (wait_exponential_jitter(initial=1, jitter=1, max=5), 3, 5, 5),
    (wait_exponential_jitter(multiplier=2, jitter=0.5), 1, 4, 4.5),
    (wait_exponential_jitter(min=7, jitter=0), 0, 7, 7),
    (wait_fixed(10) + wait_random(0, 1), 0, 10, 11),
]


@pytest.mark.parametrize(("wait", "n", "low", "high"), RANDOM_WAITS)
def test_random_waits_stay_in_bounds_and_follow_their_seed(
    wait: Any, n: int, low: float, high: float
) -> None:
    draws = [wait(n, seed=seed) for seed in range(50)]
    assert all(low <= d <= high for d in draws)
    assert draws == [wait(n, seed=seed) for seed in range(50)]  # the same seed, the same wait
    if high > low:
        assert len(set(draws)) > 40
    assert low <= wait(n) <= high  # no seed: a fresh generator


def test_random_waits_never_use_the_random_module_s_shared_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: object) -> float:
        raise AssertionError("the shared generator was used")

    for name in ("random", "uniform", "seed", "getrandbits"):
        monkeypatch.setattr(random, name, forbidden)
    for wait, n, _, _ in RANDOM_WAITS:
        wait(n, seed=3)


def test_the_parts_of_a_sum_draw_apart() -> None:
    both = wait_random(0, 1) + wait_random(0, 1)
    draws = [both(0, seed=s) for s in range(200)]
    # Independent draws: the sum is not always twice one of them.
    single = [wait_random(0, 1)(0, seed=s) for s in range(200)]
    assert sum(d != pytest.approx(2 * x) for d, x in zip(draws, single, strict=True)) > 190
    assert draws == [both(0, seed=s) for s in range(200)]


# ---------------------------------------------------------------------------
# Stops: stop(attempts, elapsed_time, upcoming_sleep=...) -> give up?
# ---------------------------------------------------------------------------

STOP_CASES: list[tuple[Any, int, float, float, bool]] = [
    # (stop, attempts made, seconds elapsed, upcoming sleep, give up?)
    (stop_after_attempt(3), 2, 0, 0, False),
    (stop_after_attempt(3), 3, 0, 0, True),
    (stop_after_attempt(1), 1, 0, 0, True),
    (stop_after_delay(10), 5, 9.9, 100, False),
    (stop_after_delay(10), 1, 10, 0, True),
    (stop_after_delay(timedelta(minutes=1)), 1, 59, 0, False),
    (stop_before_delay(10), 1, 8, 1.9, False),
    (stop_before_delay(10), 1, 8, 2, True),
    (stop_never(), 10_000, 1e9, 1e9, False),
    (stop_any(stop_after_attempt(5), stop_after_delay(10)), 5, 0, 0, True),
    (stop_any(stop_after_attempt(5), stop_after_delay(10)), 2, 11, 0, True),
    (stop_any(stop_after_attempt(5), stop_after_delay(10)), 2, 1, 0, False),
    (stop_all(stop_after_attempt(5), stop_after_delay(10)), 5, 1, 0, False),
    (stop_all(stop_after_attempt(5), stop_after_delay(10)), 5, 10, 0, True),
    (stop_after_attempt(5) | stop_before_delay(10), 1, 5, 5, True),
    (stop_after_attempt(5) & stop_never(), 9, 0, 0, False),
    (stop_any(), 9, 9, 9, False),
    (stop_all(), 1, 0, 0, True),
]


@pytest.mark.parametrize(("stop", "attempts", "elapsed", "upcoming", "expected"), STOP_CASES)
def test_stops(stop: Any, attempts: int, elapsed: float, upcoming: float, expected: bool) -> None:
    assert stop(attempts, elapsed, upcoming_sleep=upcoming) is expected


# ---------------------------------------------------------------------------
# The policy they make
# ---------------------------------------------------------------------------


def test_the_default_policy_retries_everything_three_attempts_five_seconds_apart() -> None:
    policy = retry_policy()
    assert [policy.next(0.0, n, ValueError()) for n in (1, 2, 3)] == [5, 5, None]


def test_a_rejected_error_is_not_retried_whatever_the_wait_and_stop() -> None:
    policy = retry_policy(retry=retry_if_exception_type(ConnectionError), stop=stop_never())
    assert policy.next(0.0, 1, ConnectionError()) == 5
    assert policy.next(0.0, 1, PermissionError()) is None


def test_the_first_failure_asks_the_wait_for_retry_zero() -> None:
    policy = retry_policy(
        wait=wait_chain(wait_fixed(1), wait_fixed(2), wait_fixed(3)), stop=stop_after_attempt(5)
    )
    assert [policy.next(0.0, n, ValueError()) for n in range(1, 6)] == [1, 2, 3, 3, None]
    assert policy.next(0.0, 0, ValueError()) == 1  # a caller counting from 0 gets the first


def test_the_stop_sees_the_delay_about_to_be_waited() -> None:
    policy = retry_policy(wait=wait_fixed(4), stop=stop_before_delay(10))
    assert policy.next(5.9, 1, ValueError()) == 4
    assert policy.next(6.0, 2, ValueError()) is None


def test_the_policy_passes_its_seed_to_the_wait() -> None:
    policy = retry_policy(wait=wait_random(0, 100), stop=stop_never())
    assert policy.next(0.0, 1, ValueError(), seed=9) == policy.next(0.0, 7, ValueError(), seed=9)
    assert policy.next(0.0, 1, ValueError(), seed=9) == wait_random(0, 100)(0, seed=9)


def test_plain_functions_are_parts_too() -> None:
    policy = retry_policy(
        retry=lambda error: isinstance(error, KeyError),
        wait=lambda n, seed=None: 0.25 * (n + 1),
        stop=lambda attempts, elapsed, upcoming_sleep=0.0: attempts >= 3,
    )
    assert [policy.next(0.0, n, KeyError()) for n in (1, 2, 3)] == [0.25, 0.5, None]


def test_a_policy_is_frozen_data() -> None:
    policy = retry_policy(wait=wait_fixed(1), stop=stop_after_attempt(2))
    assert policy == ComposedRetryPolicy(wait=wait_fixed(1), stop=stop_after_attempt(2))
    assert hash(policy) == hash(ComposedRetryPolicy(wait=wait_fixed(1), stop=stop_after_attempt(2)))
    assert repr(policy).startswith("ComposedRetryPolicy(retry=None, wait=wait_fixed(wait=1.0)")
    with pytest.raises(AttributeError):
        policy.wait = wait_none()  # type: ignore[misc]


MISTAKES: list[tuple[Any, str]] = [
    (lambda: retry_policy(wait=stop_after_attempt(3)), r"wait=\.\.\.\) takes a wait strategy"),
    (lambda: retry_policy(stop=wait_fixed(1)), r"stop=\.\.\.\) takes a stop condition"),
    (lambda: retry_policy(retry=wait_none()), r"retry=\.\.\.\) takes a retry condition"),
    (lambda: retry_policy(retry="ValueError"), "takes a retry condition"),
    (lambda: retry_policy(stop=stop_never), r"got the class stop_never; call it: stop_never\(\)"),
    (lambda: retry_any(retry_always, retry_never()), r"call it: retry_always\(\)"),
    (lambda: wait_fixed(1) + stop_never(), r"wait_combine\(\) takes a wait strategy"),
    (lambda: retry_if_exception_message(), "needs message= .* or match="),
    (
        lambda: retry_if_not_exception_message(message="a", match="b"),
        "message= or match=, not both",
    ),
    (lambda: wait_fixed("5"), "seconds as a number or a timedelta, not '5'"),
    (lambda: wait_exponential(multiplier="2"), "a number, not '2'"),
    (lambda: wait_exponential_jitter(initial=2, multiplier=3), "initial= or multiplier="),
]


@pytest.mark.parametrize(("build", "message"), MISTAKES)
def test_mistakes_are_refused_when_the_policy_is_built(build: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        build()


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match=r"wait_chain\(\) needs at least one wait strategy"):
        wait_chain()


# ---------------------------------------------------------------------------
# The two ready-made policies, as the incumbent defines them
# ---------------------------------------------------------------------------


def test_ready_made_policies_take_the_incumbent_s_arguments_in_its_order() -> None:
    assert ConstantDelayRetryPolicy(4, 0.5) == ConstantDelayRetryPolicy(
        maximum_attempts=4, delay=0.5
    )
    assert ConstantDelayRetryPolicy() == ConstantDelayRetryPolicy(maximum_attempts=3, delay=5)
    backoff = ExponentialBackoffRetryPolicy(6, 0.5, 3.0, 20.0, False)
    assert backoff == ExponentialBackoffRetryPolicy(
        maximum_attempts=6, initial_delay=0.5, multiplier=3.0, max_delay=20.0, jitter=False
    )
    assert ExponentialBackoffRetryPolicy().jitter is True
    assert RetryModuleConstant is ConstantDelayRetryPolicy  # one definition, two paths


def test_exponential_backoff_counts_from_the_first_failure() -> None:
    policy = ExponentialBackoffRetryPolicy(initial_delay=1, max_delay=5, jitter=False)
    assert [policy.next(0.0, n, ValueError()) for n in range(6)] == [1, 1, 2, 4, 5, None]
    jittered = ExponentialBackoffRetryPolicy(initial_delay=1, max_delay=5)
    for n, cap in [(1, 1), (2, 2), (3, 4), (4, 5)]:
        delay = jittered.next(0.0, n, ValueError(), seed=n)
        assert delay is not None
        assert 0 <= delay <= cap
        assert delay == jittered.next(0.0, n, ValueError(), seed=n)


# ---------------------------------------------------------------------------
# What @step accepts
# ---------------------------------------------------------------------------


class NoSeed:
    def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
        return None


@pytest.mark.parametrize(
    "policy",
    [
        None,
        retry_policy(),
        ConstantDelayRetryPolicy(),
        ExponentialBackoffRetryPolicy(),
        NoSeed(),
    ],
)
def test_step_accepts_policies(policy: Any) -> None:
    step(retry_policy=policy)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ConstantDelayRetryPolicy, r"got the class ConstantDelayRetryPolicy; pass an instance"),
        (wait_fixed(1), r"a wait part of a policy, not a policy; wrap it: retry_policy="),
        (stop_after_attempt(3), r"a stop part .* retry_policy=retry_policy\(stop=\.\.\.\)"),
        (retry_if_exception_type(KeyError), r"a retry part of a policy"),
        (object(), r"must have a next\(elapsed_time, attempts, error\) method, not object"),
        (3, r"method, not int"),
    ],
)
def test_step_refuses_what_is_not_a_policy_when_it_decorates(policy: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        step(retry_policy=policy)


def test_step_accepts_a_class_whose_next_needs_no_instance() -> None:
    class Static:
        @staticmethod
        def next(elapsed_time: float, attempts: int, error: Exception) -> float | None:
            return None

    step(retry_policy=Static)  # type: ignore[arg-type]


def test_the_public_module_lists_its_names_and_shares_them_with_anyflow_retry() -> None:
    import anyflow.retry
    import anyflow.retry_policy

    public = {n for n in vars(anyflow.retry_policy) if not n.startswith("_")} - {"annotations"}
    assert sorted(anyflow.retry_policy.__all__) == sorted(public)
    for name in anyflow.retry.__all__:
        if name != "check_retry_policy":
            assert getattr(anyflow.retry_policy, name) is getattr(anyflow.retry, name)


def test_step_refuses_a_next_that_cannot_take_the_three_arguments() -> None:
    class TwoArgs:
        def next(self, attempts: int, error: Exception) -> float | None:
            return None

    with pytest.raises(TypeError, match=r"TwoArgs.next cannot be called as next\("):
        step(retry_policy=TwoArgs())


# ---------------------------------------------------------------------------
# Runs that retry with a composed policy
# ---------------------------------------------------------------------------


class Fetched(Event):
    body: str


def fetch_flow(policy: Any, *errors: Exception) -> Workflow:
    """A workflow class of its own per policy (a step's policy is set when decorated)."""

    class Flow(Workflow):
        def __init__(self) -> None:
            super().__init__(timeout=10**6)
            self.errors = list(errors)
            self.attempts: list[int] = []

        @step
        async def start(self, ev: StartEvent) -> Fetched:
            return Fetched(body=ev.url)

        @step(retry_policy=policy)
        async def fetch(self, ev: Fetched, ctx: Context) -> StopEvent:
            self.attempts.append(ctx.retry_info().attempt)
            if self.errors:
                raise self.errors.pop(0)
            return StopEvent(result=f"got {ev.body}")

    return Flow()


COMPOSED = retry_policy(
    retry=retry_if_exception_type(ConnectionError) | retry_if_exception_message(match="busy"),
    wait=wait_exponential(multiplier=10, max=100) + wait_random(0, 1),
    stop=stop_after_attempt(5) | stop_after_delay(10_000),
)


@pytest.mark.anyio
async def test_a_run_retries_with_a_composed_policy() -> None:
    wf = fetch_flow(
        retry_policy(retry=retry_if_exception_type(ConnectionError), wait=wait_none()),
        ConnectionError("reset"),
        ConnectionResetError("reset again"),
    )
    assert await wf.run(url="a") == "got a"
    assert wf.attempts == [1, 2, 3]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_an_error_the_policy_does_not_retry_fails_the_run_at_once() -> None:
    wf = fetch_flow(
        retry_policy(retry=retry_if_exception_type(ConnectionError), wait=wait_none()),
        PermissionError("denied"),
    )
    with pytest.raises(PermissionError, match="denied"):
        await wf.run(url="a")
    assert wf.attempts == [1]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_retries_wait_their_delays_on_the_run_s_clock() -> None:
    errors = [ConnectionError("1"), RuntimeError("busy"), ConnectionError("3")]
    simulation = await simulate(fetch_flow(COMPOSED, *errors), url="b")
    assert simulation.result == "got b"
    failed = [t for t in simulation.ticks if isinstance(t, StepFailed)]
    fired = [t for t in simulation.ticks if isinstance(t, TimerFired)]
    delays = [t.retry_delay for t in failed]
    assert all(d is not None for d in delays)
    for n, delay in enumerate(delays):  # 10 * 2**n plus up to 1 second of jitter
        assert 10 * 2**n <= delay <= 10 * 2**n + 1  # type: ignore[operator]
    assert [t.now for t in fired] == [f.now + f.retry_delay for f in failed]  # type: ignore[operator]


@pytest.mark.anyio
async def test_the_same_run_waits_the_same_random_delays() -> None:
    async def delays(seed: int) -> list[float | None]:
        errors = [ConnectionError(str(i)) for i in range(4)]
        simulation = await simulate(fetch_flow(COMPOSED, *errors), seed=seed, url="c")
        assert simulation.result == "got c"
        return [t.retry_delay for t in simulation.ticks if isinstance(t, StepFailed)]

    first = await delays(1)
    assert await delays(1) == first
    assert await delays(2) == first  # the seed is the run's and the delivery's, not the schedule's
    assert len({d % 1 for d in first if d is not None}) == 4  # every retry draws anew


@pytest.mark.anyio
async def test_a_resumed_run_keeps_the_delays_its_journal_recorded() -> None:
    errors = [ConnectionError(str(i)) for i in range(3)]
    plain = await simulate(fetch_flow(COMPOSED, *errors), url="d")
    plain_fired = [t.now for t in plain.ticks if isinstance(t, TimerFired)]
    for nth in range(1, len(plain.ticks)):
        errors = [ConnectionError(str(i)) for i in range(3)]
        crashed = await simulate(
            fetch_flow(COMPOSED, *errors), faults=[Fault("crash", nth=nth)], url="d"
        )
        assert crashed.result == "got d", nth
        assert [t.now for t in crashed.ticks if isinstance(t, TimerFired)] == plain_fired, nth


@pytest.mark.anyio
async def test_a_journaled_run_replays_the_delays_it_waited() -> None:
    policy = retry_policy(wait=wait_random(0, 0.001), stop=stop_after_attempt(4))
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        wf = fetch_flow(policy, ConnectionError("1"), ConnectionError("2"))
        assert await wf.run(run_id="journaled", runtime=runtime, url="e") == "got e"
    replayed = await replay_journal(store, "journaled", wf)
    failures = [step.tick for step in replayed if isinstance(step.tick, StepFailed)]
    timers = [
        command
        for step in replayed
        if isinstance(step.tick, StepFailed)
        for command in step.commands
        if isinstance(command, ScheduleTimer)
    ]
    assert len(failures) == 2
    assert [t.deadline for t in timers] == [f.now + f.retry_delay for f in failures]  # type: ignore[operator]
    # The same run id in another store draws the same delays.
    again = MemoryStore()
    async with DurableRuntime(again) as runtime:
        wf = fetch_flow(policy, ConnectionError("1"), ConnectionError("2"))
        assert await wf.run(run_id="journaled", runtime=runtime, url="e") == "got e"
    replayed_again = await replay_journal(again, "journaled", wf)
    assert [s.tick.retry_delay for s in replayed_again if isinstance(s.tick, StepFailed)] == [
        f.retry_delay for f in failures
    ]


# ---------------------------------------------------------------------------
# tenacity's own parts (only when tenacity is installed)
# ---------------------------------------------------------------------------


def test_tenacity_parts_mean_what_ours_do() -> None:
    tenacity = pytest.importorskip("tenacity")
    error = caused_by(RuntimeError("HTTP 503"), ConnectionError())
    retries = [
        (tenacity.retry_if_exception_type(RuntimeError), retry_if_exception_type(RuntimeError)),
        (tenacity.retry_if_not_exception_type(KeyError), retry_if_not_exception_type(KeyError)),
        (
            tenacity.retry_if_exception_message(match="HTTP"),
            retry_if_exception_message(match="HTTP"),
        ),
        (
            tenacity.retry_if_exception_cause_type(ConnectionError),
            retry_if_exception_cause_type(ConnectionError),
        ),
        (tenacity.retry_always, retry_always()),
        (tenacity.retry_never, retry_never()),
    ]
    for theirs, ours in retries:
        policy = retry_policy(retry=theirs, wait=wait_none(), stop=stop_never())
        assert (policy.next(0.0, 1, error) is not None) is ours(error), theirs

    waits = [
        (tenacity.wait_fixed(3), wait_fixed(3)),
        (tenacity.wait_exponential(multiplier=2, max=20), wait_exponential(multiplier=2, max=20)),
        (tenacity.wait_incrementing(start=1, increment=2), wait_incrementing(start=1, increment=2)),
        (
            tenacity.wait_chain(tenacity.wait_fixed(1), tenacity.wait_fixed(4)),
            wait_chain(wait_fixed(1), wait_fixed(4)),
        ),
    ]
    for theirs, ours in waits:
        policy = retry_policy(wait=theirs, stop=stop_never())
        assert [policy.next(0.0, n, error) for n in range(1, 7)] == [ours(n) for n in range(6)]

    stops = [
        (tenacity.stop_after_attempt(3), stop_after_attempt(3)),
        (tenacity.stop_after_delay(10), stop_after_delay(10)),
        (tenacity.stop_before_delay(10), stop_before_delay(10)),
        (
            tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(5),
            stop_any(stop_after_attempt(3), stop_after_delay(5)),
        ),
        (tenacity.stop_never, stop_never()),
    ]
    for theirs, ours in stops:
        policy = retry_policy(wait=wait_fixed(2), stop=theirs)
        for attempts, elapsed in [(1, 0.0), (2, 7.9), (3, 1.0), (2, 8.0), (1, 12.0)]:
            expected = ours(attempts, elapsed, upcoming_sleep=2.0)
            assert (policy.next(elapsed, attempts, error) is None) is expected, (theirs, attempts)


def test_tenacity_random_waits_draw_from_the_run_s_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    tenacity = pytest.importorskip("tenacity")

    def forbidden(*args: object) -> float:
        raise AssertionError("the shared generator was used")

    monkeypatch.setattr(random, "random", forbidden)
    monkeypatch.setattr(random, "uniform", forbidden)
    for theirs, ours in [
        (tenacity.wait_random(1, 2), wait_random(1, 2)),
        (tenacity.wait_random_exponential(multiplier=1, max=9), wait_random_exponential(max=9)),
        (tenacity.wait_full_jitter(multiplier=3), wait_full_jitter(multiplier=3, max=60)),
        (
            tenacity.wait_exponential_jitter(max=30, jitter=2),
            wait_exponential_jitter(max=30, jitter=2),
        ),
        (tenacity.wait_fixed(5) + tenacity.wait_random(0, 1), wait_fixed(5) + wait_random(0, 1)),
    ]:
        policy = retry_policy(wait=theirs, stop=stop_never())
        assert [policy.next(0.0, n, ValueError(), seed=n) for n in (1, 2, 3)] == [
            ours(n - 1, seed=n) for n in (1, 2, 3)
        ], theirs


def test_tenacity_parts_mix_with_ours() -> None:
    tenacity = pytest.importorskip("tenacity")
    retry = retry_if_exception_type(KeyError) | tenacity.retry_if_exception_type(ValueError)
    assert retry(ValueError())
    assert retry(KeyError())
    assert not retry(OSError())
    other_way = tenacity.retry_if_exception_type(ValueError) | retry_if_exception_type(KeyError)
    policy = retry_policy(
        retry=other_way,
        wait=tenacity.wait_fixed(1) + wait_fixed(2),
        stop=stop_after_attempt(3) | tenacity.stop_after_delay(60),
    )
    assert [policy.next(0.0, n, KeyError()) for n in (1, 2, 3)] == [3, 3, None]
    assert policy.next(0.0, 1, OSError()) is None
    assert policy.next(60.0, 1, ValueError()) is None


def test_tenacity_mistakes_are_refused_early() -> None:
    tenacity = pytest.importorskip("tenacity")
    with pytest.raises(
        TypeError, match=r"retry=\.\.\.\) takes a retry part, not the tenacity stop"
    ):
        retry_policy(retry=tenacity.stop_after_attempt(3))
    with pytest.raises(TypeError, match=r"got a tenacity Retrying; pass its parts instead"):
        retry_policy(retry=tenacity.Retrying())
    with pytest.raises(TypeError, match=r"a stop part of a policy, not a policy"):
        step(retry_policy=tenacity.stop_after_attempt(3))


@pytest.mark.anyio
async def test_a_run_retries_with_tenacity_parts() -> None:
    tenacity = pytest.importorskip("tenacity")
    policy = retry_policy(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        wait=tenacity.wait_exponential(multiplier=5) + tenacity.wait_random(0, 1),
        stop=tenacity.stop_after_attempt(4),
    )
    errors = [ConnectionError("1"), ConnectionError("2")]
    first = await simulate(fetch_flow(policy, *errors), url="t")
    assert first.result == "got t"
    delays = [t.retry_delay for t in first.ticks if isinstance(t, StepFailed)]
    assert 5 <= delays[0] <= 6  # type: ignore[operator]
    assert 10 <= delays[1] <= 11  # type: ignore[operator]
    again = await simulate(fetch_flow(policy, *errors), url="t")
    assert [t.retry_delay for t in again.ticks if isinstance(t, StepFailed)] == delays


def test_our_parts_take_tenacity_s_argument_names() -> None:
    tenacity = pytest.importorskip("tenacity")
    import inspect

    ours = {
        "wait_fixed": wait_fixed,
        "wait_none": wait_none,
        "wait_random": wait_random,
        "wait_exponential": wait_exponential,
        "wait_random_exponential": wait_random_exponential,
        "wait_exponential_jitter": wait_exponential_jitter,
        "wait_incrementing": wait_incrementing,
        "wait_chain": wait_chain,
        "wait_combine": wait_combine,
        "stop_after_attempt": stop_after_attempt,
        "stop_after_delay": stop_after_delay,
        "stop_before_delay": stop_before_delay,
        "stop_any": stop_any,
        "stop_all": stop_all,
        "retry_if_exception": retry_if_exception,
        "retry_if_exception_type": retry_if_exception_type,
        "retry_if_not_exception_type": retry_if_not_exception_type,
        "retry_unless_exception_type": retry_unless_exception_type,
        "retry_if_exception_message": retry_if_exception_message,
        "retry_if_not_exception_message": retry_if_not_exception_message,
        "retry_if_exception_cause_type": retry_if_exception_cause_type,
        "retry_any": retry_any,
        "retry_all": retry_all,
    }
    for name, cls in ours.items():
        theirs = getattr(tenacity, name, None) or getattr(tenacity.wait, name)
        assert set(inspect.signature(cls).parameters) >= set(
            inspect.signature(theirs).parameters
        ), name


@pytest.mark.parametrize(
    "part", [wait_fixed, wait_random, wait_incrementing, stop_after_delay, stop_before_delay]
)
def test_constructor_annotations_resolve(part: type) -> None:
    # typing.get_type_hints() reads the constructors (tools that compare them
    # with tenacity's do): the durations take a number or a timedelta.
    hints = typing.get_type_hints(part.__init__)
    durations = {name: tp for name, tp in hints.items() if name != "return"}
    assert durations
    assert set(durations.values()) == {int | float | timedelta}
