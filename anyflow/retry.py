"""Retry policies: when a step attempt fails, whether and when to try again.

A policy is user code, so the reducer never calls it: the worker that saw the
failure asks the policy and sends its verdict to the reducer as a field of the
``StepFailed`` tick, which keeps replays deterministic.

This module holds the ``RetryPolicy`` protocol and the two ready-made
policies; ``anyflow.retry_policy`` adds the composable vocabulary
(``retry_policy(retry=..., wait=..., stop=...)``) and re-exports these.
"""

from __future__ import annotations

import inspect
import random
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from ._retry_parts import _RetryBase, _StopBase, _WaitBase

__all__ = [
    "ConstantDelayRetryPolicy",
    "ExponentialBackoffRetryPolicy",
    "RetryInfo",
    "RetryPolicy",
    "check_retry_policy",
]


@runtime_checkable
class RetryPolicy(Protocol):
    """Anything with this ``next`` method can be a step's ``retry_policy``."""

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        ``elapsed_time`` counts from the start of the delivery's first attempt,
        ``attempts`` is the number of attempts made so far (1 after the first
        failure), ``seed`` makes any randomness reproducible.
        """
        ...


@attrs.frozen
class ConstantDelayRetryPolicy:
    """Retry after the same ``delay`` until ``maximum_attempts`` attempts were made."""

    maximum_attempts: int = 3
    delay: float = 5.0

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        return self.delay if attempts < self.maximum_attempts else None


@attrs.frozen
class ExponentialBackoffRetryPolicy:
    """Retry after ``initial_delay * multiplier ** (attempts - 1)``, capped at ``max_delay``.

    With ``jitter`` (the default), the delay is drawn uniformly from [0, delay]
    by a generator seeded with ``seed``, so a replay waits the same.
    """

    maximum_attempts: int = 5
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if attempts >= self.maximum_attempts:
            return None
        try:
            delay = min(
                self.initial_delay * self.multiplier ** max(attempts - 1, 0), self.max_delay
            )
        except OverflowError:
            delay = self.max_delay
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
    elapsed_seconds: float = 0.0
    """Seconds since the first attempt of this delivery began, on the run's
    clock (0.0 on the first attempt)."""
    last_failed_at: datetime | None = None
    """When the previous attempt failed, a timezone-aware UTC datetime (None on
    the first attempt)."""

    @property
    def retry_number(self) -> int:
        """0 on the first attempt, 1 on the first retry (the incumbent's count)."""
        return self.attempt - 1


def check_retry_policy(policy: object) -> None:
    """Refuse, when a step is decorated, what cannot be its ``retry_policy``.

    Accepted: None and any object whose ``next`` takes ``(elapsed_time,
    attempts, error)``. The messages name the usual mistakes: a class for an
    instance, or a part of a policy (a retry, wait or stop) for the policy.

    :raises TypeError: naming what was given and what to write instead.
    """
    if policy is None:
        return
    part = _part_kind(policy)
    if part is not None:
        raise TypeError(
            f"retry_policy got {policy!r}, a {part} part of a policy, not a policy; "
            f"wrap it: retry_policy=retry_policy({part}=...) (from anyflow.retry_policy)"
        )
    next_method = getattr(policy, "next", None)
    if not callable(next_method):
        raise TypeError(
            f"retry_policy must have a next(elapsed_time, attempts, error) method, "
            f"not {type(policy).__name__}; build one with anyflow.retry_policy.retry_policy(...)"
        )
    try:
        inspect.signature(next_method).bind(0.0, 1, Exception())
    except TypeError as exc:
        if isinstance(policy, type):  # its next wants an instance
            raise TypeError(
                f"retry_policy got the class {policy.__name__}; pass an instance, "
                f"e.g. retry_policy={policy.__name__}()"
            ) from exc
        raise TypeError(
            f"{type(policy).__name__}.next cannot be called as next(elapsed_time, attempts, "
            f"error): {exc}"
        ) from exc
    except ValueError:  # no signature to read (a builtin): let it be tried
        pass


def _part_kind(value: object) -> str | None:
    """'retry', 'wait' or 'stop' if ``value`` is one part of a policy (ours or tenacity's)."""
    for kind, base in (("retry", _RetryBase), ("wait", _WaitBase), ("stop", _StopBase)):
        if isinstance(value, base):
            return kind
    for cls in type(value).__mro__:  # tenacity's, without importing it
        if cls.__module__.startswith("tenacity.") and cls.__name__.endswith("_base"):
            kind = cls.__name__.removesuffix("_base")
            if kind in ("retry", "wait", "stop"):
                return kind
    return None
