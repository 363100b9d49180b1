"""Wait strategies: how long to wait before retry ``n`` (0 for the first).

A strategy is called with the retry's number and a ``seed``, and returns
seconds. A random wait never draws from the ``random`` module's shared
generator but from ``random.Random(seed)`` (``_rng``), with the seed the
runtime derives from the run, the delivery and the attempt, so a replayed or
simulated run waits exactly what it waited the first time. Strategies add up
with ``+`` through ``_WaitBase`` (``_retry_parts``, where ``wait_combine``, the
sum, lives).
"""

from __future__ import annotations

import math

import attrs

from ._retry_parts import WaitStrategy, _as_wait, _rng, _seconds, _WaitBase

__all__ = [
    "wait_chain",
    "wait_exponential",
    "wait_exponential_jitter",
    "wait_fixed",
    "wait_full_jitter",
    "wait_incrementing",
    "wait_none",
    "wait_random",
    "wait_random_exponential",
]


def _number(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, not {value!r}")
    return float(value)


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
