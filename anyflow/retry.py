"""Retry policies: when a step attempt fails, whether and when to try again.

A policy is user code, so the reducer never calls it: the worker that saw the
failure asks the policy and sends its verdict to the reducer as a field of the
``StepFailed`` tick, which keeps replays deterministic.
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["ConstantDelayRetryPolicy", "ExponentialBackoffRetryPolicy", "RetryInfo", "RetryPolicy"]


@runtime_checkable
class RetryPolicy(Protocol):
    """Anything with this ``next`` method can be a step's ``retry_policy``."""

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``elapsed_time`` counts from the first failure of this delivery,
        ``attempts`` is the number of attempts made so far (1 after the first
        failure), ``seed`` makes any randomness reproducible.
        """
        ...


@attrs.frozen
class ConstantDelayRetryPolicy:
    """Retry after the same ``delay`` until ``maximum_attempts`` attempts were made."""

    delay: float = 5.0
    maximum_attempts: int = 3

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        return self.delay if attempts < self.maximum_attempts else None


@attrs.frozen
class ExponentialBackoffRetryPolicy:
    """Retry after ``initial_delay * multiplier ** (attempts - 1)``, capped at ``max_delay``.

    With ``jitter``, the delay is drawn uniformly from [0, delay] by a generator
    seeded with ``seed``, so a replay waits the same.
    """

    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    maximum_attempts: int = 5
    jitter: bool = False

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if attempts >= self.maximum_attempts:
            return None
        delay = min(self.initial_delay * self.multiplier ** (attempts - 1), self.max_delay)
        if self.jitter:
            delay = random.Random(seed).uniform(0.0, delay)
        return delay


@attrs.frozen
class RetryInfo:
    """Where the current step attempt stands (``ctx.retry_info()``)."""

    attempt: int
    """1 on the first attempt, 2 on the first retry, ..."""
    last_exception: BaseException | None
    """What the previous attempt raised, or None on the first attempt."""

    @property
    def retry_number(self) -> int:
        """0 on the first attempt, 1 on the first retry (the incumbent's count)."""
        return self.attempt - 1
