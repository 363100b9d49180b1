"""Retry policies put together from three parts: a condition, a wait and a stop.

``retry_policy(retry=..., wait=..., stop=...)`` answers ``RetryPolicy.next``
with three small callables, each with one job, in the vocabulary of tenacity
(and of llama-index-workflows, which took it from there):

* a **retry condition** looks at the error: is it worth another attempt?
  ``condition(error) -> bool``; combine with ``|`` (either) and ``&`` (both).
* a **wait strategy** gives the delay before retry number ``n``, counted
  from 0 for the first retry: ``wait(n, seed=...) -> seconds``; add with ``+``.
* a **stop condition** looks at the attempts made so far (1 after the first
  failure), the seconds elapsed and the delay about to be waited:
  ``stop(attempts, elapsed_time, upcoming_sleep=...) -> bool``; combine with
  ``|`` (either) and ``&`` (both).

Why a ``seed``: a random wait never draws from the ``random`` module's shared
generator. It draws from ``random.Random(seed)``, and the runtime derives the
seed from the run, the delivery and the attempt, so a replayed run or a
simulated one waits exactly what it waited the first time.

Each part is a small frozen attrs class: it compares by value, shows its
arguments in its repr and can be shared between steps. tenacity's own objects
are accepted wherever a part is (see ``anyflow._retry_tenacity``); so is any
plain function with the part's call signature.
"""

from __future__ import annotations

import math
import random
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import attrs

__all__ = [
    "ComposedRetryPolicy",
    "RetryCondition",
    "StopCondition",
    "WaitStrategy",
    "retry_all",
    "retry_always",
    "retry_any",
    "retry_if_exception",
    "retry_if_exception_cause_type",
    "retry_if_exception_message",
    "retry_if_exception_type",
    "retry_if_not_exception_message",
    "retry_if_not_exception_type",
    "retry_never",
    "retry_policy",
    "retry_unless_exception_type",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_all",
    "stop_any",
    "stop_before_delay",
    "stop_never",
    "wait_chain",
    "wait_combine",
    "wait_exponential",
    "wait_exponential_jitter",
    "wait_fixed",
    "wait_full_jitter",
    "wait_incrementing",
    "wait_none",
    "wait_random",
    "wait_random_exponential",
]

time_unit_type = int | float | timedelta
"""Seconds, as a number or a ``timedelta`` (tenacity's name for it)."""


class RetryCondition(Protocol):
    """Decides whether an error is worth another attempt."""

    def __call__(self, error: BaseException) -> bool: ...


class WaitStrategy(Protocol):
    """The delay before retry ``attempts`` (0 for the first retry), in seconds."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float: ...


class StopCondition(Protocol):
    """Decides whether to give up, given the attempts made (1 after the first
    failure), the seconds elapsed and the delay about to be waited."""

    def __call__(
        self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0
    ) -> bool: ...


# Conversions of constructor arguments. Their annotations are what the
# constructors' signatures show (attrs takes them from the converter).


def _seconds(value: int | float | timedelta) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected seconds as a number or a timedelta, not {value!r}")
    return float(value)


def _number(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, not {value!r}")
    return float(value)


def _pattern(match: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    return re.compile(match) if isinstance(match, str) else match


def _rng(seed: int | None) -> random.Random:
    """The generator a random wait draws from: seeded by the runtime, never the
    ``random`` module's shared one (a direct call without a seed gets a fresh one)."""
    return random.Random(seed)


def _sub_seed(seed: int | None, index: int) -> int | None:
    """A different, still reproducible, seed for the ``index``-th part of a sum,
    so that two random waits added together do not draw the same number."""
    if seed is None or index == 0:
        return seed
    return (seed * 1_000_003 + index) & 0xFFFF_FFFF


# The parts. Each coerces what it is given with _as_retry/_as_wait/_as_stop
# (defined below), so a tenacity object or a misplaced part is caught when the
# policy is built, not when a step fails.


class _RetryBase:
    """Retry conditions combine with ``|`` (either) and ``&`` (both)."""

    def __call__(self, error: BaseException) -> bool:
        raise NotImplementedError

    def __or__(self, other: RetryCondition) -> retry_any:
        return retry_any(self, other)

    def __ror__(self, other: RetryCondition) -> retry_any:
        return retry_any(other, self)

    def __and__(self, other: RetryCondition) -> retry_all:
        return retry_all(self, other)

    def __rand__(self, other: RetryCondition) -> retry_all:
        return retry_all(other, self)


class _WaitBase:
    """Wait strategies add up with ``+`` (and ``sum()``)."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitStrategy) -> wait_combine:
        return wait_combine(self, other)

    def __radd__(self, other: WaitStrategy | int) -> WaitStrategy:
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        return wait_combine(other, self)  # type: ignore[arg-type]


class _StopBase:
    """Stop conditions combine with ``|`` (either) and ``&`` (both)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        raise NotImplementedError

    def __or__(self, other: StopCondition) -> stop_any:
        return stop_any(self, other)

    def __ror__(self, other: StopCondition) -> stop_any:
        return stop_any(other, self)

    def __and__(self, other: StopCondition) -> stop_all:
        return stop_all(self, other)

    def __rand__(self, other: StopCondition) -> stop_all:
        return stop_all(other, self)


ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


@attrs.frozen
class retry_if_exception(_RetryBase):
    """Retry when ``predicate(error)`` is true."""

    predicate: Callable[[BaseException], bool]

    def __call__(self, error: BaseException) -> bool:
        return bool(self.predicate(error))


@attrs.frozen
class retry_if_exception_type(_RetryBase):
    """Retry when the error is an instance of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        return isinstance(error, self.exception_types)


@attrs.frozen
class retry_if_not_exception_type(_RetryBase):
    """Retry when the error is *not* an instance of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        return not isinstance(error, self.exception_types)


@attrs.frozen
class retry_unless_exception_type(retry_if_not_exception_type):
    """tenacity's other name for ``retry_if_not_exception_type`` (a step that
    failed always has an exception, so the two mean the same here)."""


def _check_message(
    instance: retry_if_exception_message, _: object, match: str | re.Pattern[str] | None
) -> None:
    name = type(instance).__name__
    if instance.message is None and match is None:
        raise TypeError(f"{name}() needs message= (the exact text) or match= (a regex)")
    if instance.message is not None and match is not None:
        raise TypeError(f"{name}() takes message= or match=, not both")


@attrs.frozen
class retry_if_exception_message(_RetryBase):
    """Retry when ``str(error)`` equals ``message``, or when the regex ``match``
    is found in it (``re.search``)."""

    message: str | None = None
    match: str | re.Pattern[str] | None = attrs.field(default=None, validator=_check_message)

    def __call__(self, error: BaseException) -> bool:
        text = str(error)
        if self.message is not None:
            return text == self.message
        pattern = _pattern(self.match)
        return pattern is not None and pattern.search(text) is not None


@attrs.frozen
class retry_if_not_exception_message(retry_if_exception_message):
    """Retry unless the message matches, as ``retry_if_exception_message`` reads it."""

    def __call__(self, error: BaseException) -> bool:
        return not super().__call__(error)


@attrs.frozen
class retry_if_exception_cause_type(_RetryBase):
    """Retry when an exception in the error's ``__cause__`` chain (``raise ...
    from cause``, not the implicit ``__context__``) is of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        cause = error.__cause__
        while cause is not None:
            if isinstance(cause, self.exception_types):
                return True
            cause = cause.__cause__
        return False


@attrs.frozen(init=False)
class retry_any(_RetryBase):
    """Retry when any of ``retries`` says so (what ``a | b`` builds)."""

    retries: tuple[RetryCondition, ...]

    def __init__(self, *retries: RetryCondition) -> None:
        self.__attrs_init__(tuple(_as_retry(r, "retry_any()") for r in retries))

    def __call__(self, error: BaseException) -> bool:
        return any(retry(error) for retry in self.retries)


@attrs.frozen(init=False)
class retry_all(_RetryBase):
    """Retry when all of ``retries`` say so (what ``a & b`` builds)."""

    retries: tuple[RetryCondition, ...]

    def __init__(self, *retries: RetryCondition) -> None:
        self.__attrs_init__(tuple(_as_retry(r, "retry_all()") for r in retries))

    def __call__(self, error: BaseException) -> bool:
        return all(retry(error) for retry in self.retries)


@attrs.frozen
class retry_always(_RetryBase):
    """Retry every error."""

    def __call__(self, error: BaseException) -> bool:
        return True


@attrs.frozen
class retry_never(_RetryBase):
    """Retry no error."""

    def __call__(self, error: BaseException) -> bool:
        return False


@attrs.frozen
class wait_fixed(_WaitBase):
    """The same delay before every retry."""

    wait: float = attrs.field(converter=_seconds)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self.wait


@attrs.frozen
class wait_none(_WaitBase):
    """No delay: retry at once."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return 0.0


@attrs.frozen
class wait_random(_WaitBase):
    """A delay drawn uniformly from [``min``, ``max``] (seeded, see the module)."""

    min: float = attrs.field(default=0.0, converter=_seconds)
    max: float = attrs.field(default=1.0, converter=_seconds)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _rng(seed).uniform(self.min, self.max)


def _exponential(multiplier: float, exp_base: float, n: int, cap: float) -> float:
    """``multiplier * exp_base ** n``, at most ``cap``, without overflowing."""
    try:
        value = multiplier * exp_base**n
    except OverflowError:
        return cap
    return cap if math.isnan(value) else min(value, cap)


@attrs.frozen
class wait_exponential(_WaitBase):
    """``multiplier * exp_base ** n`` before retry ``n`` (0 first), kept
    between ``min`` and ``max``: 1, 2, 4, ... 60 with the defaults."""

    multiplier: float = attrs.field(default=1.0, converter=_number)
    exp_base: float = attrs.field(default=2.0, converter=_number)
    max: float = attrs.field(default=60.0, converter=_seconds)
    min: float = attrs.field(default=0.0, converter=_seconds)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        value = _exponential(self.multiplier, self.exp_base, attempts, self.max)
        return max(self.min, 0.0, value)


@attrs.frozen
class wait_random_exponential(_WaitBase):
    """Full jitter: a delay drawn uniformly between ``min`` and what
    ``wait_exponential`` with the same arguments would wait (seeded)."""

    multiplier: float = attrs.field(default=1.0, converter=_number)
    exp_base: float = attrs.field(default=2.0, converter=_number)
    max: float = attrs.field(default=60.0, converter=_seconds)
    min: float = attrs.field(default=0.0, converter=_seconds)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        upper = max(self.min, 0.0, _exponential(self.multiplier, self.exp_base, attempts, self.max))
        return _rng(seed).uniform(self.min, upper)


wait_full_jitter = wait_random_exponential
"""tenacity's other name for ``wait_random_exponential``."""


def _jitter_multiplier(instance: wait_exponential_jitter, _: object, multiplier: float) -> None:
    if instance.initial != 1 and multiplier != 1:
        raise ValueError(
            "wait_exponential_jitter() takes initial= or multiplier= (the same thing), not both"
        )


@attrs.frozen
class wait_exponential_jitter(_WaitBase):
    """``initial * exp_base ** n`` plus a random ``[0, jitter]``, at most ``max``
    and at least ``min`` (seeded). ``multiplier`` is tenacity's newer name for
    ``initial``."""

    initial: float = attrs.field(default=1.0, converter=_number)
    exp_base: float = attrs.field(default=2.0, converter=_number)
    max: float = attrs.field(default=60.0, converter=_seconds)
    jitter: float = attrs.field(default=1.0, converter=_seconds)
    min: float = attrs.field(default=0.0, converter=_seconds)
    multiplier: float = attrs.field(default=1.0, converter=_number, validator=_jitter_multiplier)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        scale = self.initial if self.initial != 1 else self.multiplier
        base = _exponential(scale, self.exp_base, attempts, self.max)
        return max(self.min, 0.0, min(base + _rng(seed).uniform(0.0, self.jitter), self.max))


@attrs.frozen
class wait_incrementing(_WaitBase):
    """``start + increment * n`` before retry ``n`` (0 first), between 0 and ``max``."""

    start: float = attrs.field(default=0.0, converter=_seconds)
    increment: float = attrs.field(default=100.0, converter=_seconds)
    max: float = attrs.field(default=math.inf, converter=_seconds)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return max(0.0, min(self.start + self.increment * attempts, self.max))


@attrs.frozen(init=False)
class wait_chain(_WaitBase):
    """The first strategy before the first retry, the second before the second,
    ...; the last one for every retry after that."""

    strategies: tuple[WaitStrategy, ...]

    def __init__(self, *strategies: WaitStrategy) -> None:
        if not strategies:
            raise ValueError("wait_chain() needs at least one wait strategy")
        self.__attrs_init__(tuple(_as_wait(s, "wait_chain()") for s in strategies))

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        strategy = self.strategies[min(max(attempts, 0), len(self.strategies) - 1)]
        return strategy(attempts, seed=seed)


@attrs.frozen(init=False)
class wait_combine(_WaitBase):
    """The sum of the strategies' delays (what ``a + b`` builds). Random parts
    each get their own seed, so they do not draw the same number."""

    strategies: tuple[WaitStrategy, ...]

    def __init__(self, *strategies: WaitStrategy) -> None:
        self.__attrs_init__(tuple(_as_wait(s, "wait_combine()") for s in strategies))

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return sum(
            strategy(attempts, seed=_sub_seed(seed, index))
            for index, strategy in enumerate(self.strategies)
        )


@attrs.frozen
class stop_after_attempt(_StopBase):
    """Give up once ``max_attempt_number`` attempts were made (the first included)."""

    max_attempt_number: int

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return attempts >= self.max_attempt_number


@attrs.frozen
class stop_after_delay(_StopBase):
    """Give up once ``max_delay`` seconds have passed."""

    max_delay: float = attrs.field(converter=_seconds)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time >= self.max_delay


@attrs.frozen
class stop_before_delay(_StopBase):
    """Give up if waiting the next delay would reach ``max_delay`` seconds."""

    max_delay: float = attrs.field(converter=_seconds)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time + upcoming_sleep >= self.max_delay


@attrs.frozen(init=False)
class stop_any(_StopBase):
    """Give up when any of ``stops`` says so (what ``a | b`` builds)."""

    stops: tuple[StopCondition, ...]

    def __init__(self, *stops: StopCondition) -> None:
        self.__attrs_init__(tuple(_as_stop(s, "stop_any()") for s in stops))

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return any(s(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for s in self.stops)


@attrs.frozen(init=False)
class stop_all(_StopBase):
    """Give up when all of ``stops`` say so (what ``a & b`` builds)."""

    stops: tuple[StopCondition, ...]

    def __init__(self, *stops: StopCondition) -> None:
        self.__attrs_init__(tuple(_as_stop(s, "stop_all()") for s in stops))

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return all(s(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for s in self.stops)


@attrs.frozen
class stop_never(_StopBase):
    """Never give up (bound the run with the workflow's ``timeout`` instead)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return False


# Checking and adapting the parts a policy is given.

_KINDS = {"retry": _RetryBase, "wait": _WaitBase, "stop": _StopBase}
_EXAMPLES = {
    "retry": "a retry condition such as retry_if_exception_type(ConnectionError)",
    "wait": "a wait strategy such as wait_fixed(5)",
    "stop": "a stop condition such as stop_after_attempt(3)",
}


def _coerce(value: object, kind: str, where: str) -> object:
    """``value`` as a part of this ``kind``, or a TypeError naming ``where``."""
    if "tenacity" in sys.modules:  # a tenacity object can only exist once it is imported
        from ._retry_tenacity import adapt

        adapted = adapt(value, kind, where)
        if adapted is not None:
            return adapted
    if isinstance(value, type) and issubclass(value, tuple(_KINDS.values())):
        raise TypeError(f"{where} got the class {value.__name__}; call it: {value.__name__}()")
    wrong = next((k for k, base in _KINDS.items() if isinstance(value, base)), kind)
    if wrong != kind or not callable(value):
        raise TypeError(f"{where} takes {_EXAMPLES[kind]}, not {value!r}")
    return value


def _as_retry(value: object, where: str) -> RetryCondition:
    return _coerce(value, "retry", where)  # type: ignore[return-value]


def _as_wait(value: object, where: str) -> WaitStrategy:
    return _coerce(value, "wait", where)  # type: ignore[return-value]


def _as_stop(value: object, where: str) -> StopCondition:
    return _coerce(value, "stop", where)  # type: ignore[return-value]


def _retry_field(value: object) -> RetryCondition | None:
    return None if value is None else _as_retry(value, "retry_policy(retry=...)")


def _wait_field(value: object) -> WaitStrategy:
    return _as_wait(value, "retry_policy(wait=...)")


def _stop_field(value: object) -> StopCondition:
    return _as_stop(value, "retry_policy(stop=...)")


_DEFAULT_WAIT = wait_fixed(5)
_DEFAULT_STOP = stop_after_attempt(3)


@attrs.frozen
class ComposedRetryPolicy:
    """A ``RetryPolicy`` made of a retry condition, a wait and a stop
    (``retry_policy(...)`` builds it).

    On a failure: if ``retry`` rejects the error, give up; otherwise compute
    the delay for this retry with ``wait`` and give up if ``stop`` says so,
    seeing that delay as ``upcoming_sleep``.
    """

    retry: RetryCondition | None = attrs.field(default=None, converter=_retry_field)
    """Which errors to retry; None retries every one."""
    wait: WaitStrategy = attrs.field(default=_DEFAULT_WAIT, converter=_wait_field)
    """The delay before each retry."""
    stop: StopCondition = attrs.field(default=_DEFAULT_STOP, converter=_stop_field)
    """When to give up."""

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if self.retry is not None and not self.retry(error):
            return None
        # ``attempts`` counts failures from 1; waits count retries from 0.
        delay = self.wait(max(attempts - 1, 0), seed=seed)
        if self.stop(attempts, elapsed_time, upcoming_sleep=delay):
            return None
        return delay


def retry_policy(
    retry: RetryCondition | None = None,
    wait: WaitStrategy = _DEFAULT_WAIT,
    stop: StopCondition = _DEFAULT_STOP,
) -> ComposedRetryPolicy:
    """A step's retry policy from a ``retry`` condition, a ``wait`` and a ``stop``.

    With no arguments: every error, three attempts in all, five seconds apart.

    ```python
    policy = retry_policy(
        retry=retry_if_exception_type(ConnectionError),
        wait=wait_exponential(multiplier=0.5, max=10),
        stop=stop_after_attempt(4) | stop_after_delay(30),
    )
    # waits 0.5, 1 and 2 seconds after the first three failures, then gives up
    ```

    :raises TypeError: if a part is not of its kind (a stop given as ``wait=``,
        a class instead of an instance, something not callable).
    """
    return ComposedRetryPolicy(retry=retry, wait=wait, stop=stop)
