"""What every retry part shares: its call signature, how parts combine, and
the check that a value given as a part is one.

The three kinds of part (retry conditions, wait strategies, stop conditions)
are defined by their call signatures, the protocols below. anyflow's own
parts derive from one base per kind, which gives them their operators
(``|`` and ``&`` for conditions and stops, ``+`` for waits); the classes those
operators build (``retry_any``, ``retry_all``, ``wait_combine``, ``stop_any``,
``stop_all``) live here with the bases, since each needs the other.

Every combinator checks its members with ``_as_retry``/``_as_wait``/
``_as_stop``, so a tenacity object becomes an anyflow part and a misplaced
part (a stop given where a wait goes, a class instead of an instance) is
refused when the policy is built, not when a step fails. The parts
themselves are in ``_retry_conditions``, ``_retry_waits`` and
``_retry_stops``; ``_retry_compose`` puts a policy together from them.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from typing import Protocol

import attrs

__all__ = [
    "RetryCondition",
    "StopCondition",
    "WaitStrategy",
    "retry_all",
    "retry_any",
    "stop_all",
    "stop_any",
    "time_unit_type",
    "wait_combine",
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


# Conversions of constructor arguments shared by the parts of several kinds.
# Their annotations are what the constructors' signatures show (attrs takes
# them from the converter).


def _seconds(value: int | float | timedelta) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected seconds as a number or a timedelta, not {value!r}")
    return float(value)


# The annotation as an object, not the string this module's annotations are:
# attrs copies it onto __init__s written in the parts' modules, which do not
# import timedelta, so typing.get_type_hints() could not read them.
_seconds.__annotations__["value"] = int | float | timedelta


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


# The bases: one per kind, giving its parts their operators.


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


# What the operators build.


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
