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

This module puts a policy together (``ComposedRetryPolicy``, ``retry_policy``)
and gathers the whole vocabulary in one place for ``anyflow.retry_policy``;
the parts are defined by kind in ``_retry_conditions``, ``_retry_waits`` and
``_retry_stops``, and what they share in ``_retry_parts``.
"""

from __future__ import annotations

import attrs

from ._retry_conditions import retry_always as retry_always
from ._retry_conditions import retry_if_exception as retry_if_exception
from ._retry_conditions import retry_if_exception_cause_type as retry_if_exception_cause_type
from ._retry_conditions import retry_if_exception_message as retry_if_exception_message
from ._retry_conditions import retry_if_exception_type as retry_if_exception_type
from ._retry_conditions import retry_if_not_exception_message as retry_if_not_exception_message
from ._retry_conditions import retry_if_not_exception_type as retry_if_not_exception_type
from ._retry_conditions import retry_never as retry_never
from ._retry_conditions import retry_unless_exception_type as retry_unless_exception_type
from ._retry_parts import RetryCondition as RetryCondition
from ._retry_parts import StopCondition as StopCondition
from ._retry_parts import WaitStrategy as WaitStrategy
from ._retry_parts import _as_retry, _as_stop, _as_wait
from ._retry_parts import retry_all as retry_all
from ._retry_parts import retry_any as retry_any
from ._retry_parts import stop_all as stop_all
from ._retry_parts import stop_any as stop_any
from ._retry_parts import time_unit_type as time_unit_type
from ._retry_parts import wait_combine as wait_combine
from ._retry_stops import stop_after_attempt as stop_after_attempt
from ._retry_stops import stop_after_delay as stop_after_delay
from ._retry_stops import stop_before_delay as stop_before_delay
from ._retry_stops import stop_never as stop_never
from ._retry_waits import wait_chain as wait_chain
from ._retry_waits import wait_exponential as wait_exponential
from ._retry_waits import wait_exponential_jitter as wait_exponential_jitter
from ._retry_waits import wait_fixed as wait_fixed
from ._retry_waits import wait_full_jitter as wait_full_jitter
from ._retry_waits import wait_incrementing as wait_incrementing
from ._retry_waits import wait_none as wait_none
from ._retry_waits import wait_random as wait_random
from ._retry_waits import wait_random_exponential as wait_random_exponential

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

# Checking the parts a policy is given (the check itself is _retry_parts').


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
