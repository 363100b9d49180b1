"""Retry policies for steps: ``@step(retry_policy=...)``.

The public module for everything about retries, under the name
llama-index-workflows uses, so ``from workflows.retry_policy import ...``
ports by changing the package name:

* ``retry_policy(retry=..., wait=..., stop=...)`` puts a policy together from
  a retry condition (``retry_if_exception_type(ConnectionError) | ...``), a
  wait strategy (``wait_exponential(...) + wait_random(0, 1)``) and a stop
  condition (``stop_after_attempt(5) | stop_after_delay(60)``); tenacity's own
  parts are accepted too, when tenacity is installed;
* ``ConstantDelayRetryPolicy`` and ``ExponentialBackoffRetryPolicy``, ready-made;
* ``RetryPolicy``, the protocol a policy of your own implements;
* ``RetryInfo``, what ``ctx.retry_info()`` returns.

See docs/retries-and-errors.md.
"""

from __future__ import annotations

from ._retry_compose import ComposedRetryPolicy as ComposedRetryPolicy
from ._retry_compose import RetryCondition as RetryCondition
from ._retry_compose import StopCondition as StopCondition
from ._retry_compose import WaitStrategy as WaitStrategy
from ._retry_compose import retry_all as retry_all
from ._retry_compose import retry_always as retry_always
from ._retry_compose import retry_any as retry_any
from ._retry_compose import retry_if_exception as retry_if_exception
from ._retry_compose import retry_if_exception_cause_type as retry_if_exception_cause_type
from ._retry_compose import retry_if_exception_message as retry_if_exception_message
from ._retry_compose import retry_if_exception_type as retry_if_exception_type
from ._retry_compose import retry_if_not_exception_message as retry_if_not_exception_message
from ._retry_compose import retry_if_not_exception_type as retry_if_not_exception_type
from ._retry_compose import retry_never as retry_never
from ._retry_compose import retry_policy as retry_policy
from ._retry_compose import retry_unless_exception_type as retry_unless_exception_type
from ._retry_compose import stop_after_attempt as stop_after_attempt
from ._retry_compose import stop_after_delay as stop_after_delay
from ._retry_compose import stop_all as stop_all
from ._retry_compose import stop_any as stop_any
from ._retry_compose import stop_before_delay as stop_before_delay
from ._retry_compose import stop_never as stop_never
from ._retry_compose import time_unit_type as time_unit_type
from ._retry_compose import wait_chain as wait_chain
from ._retry_compose import wait_combine as wait_combine
from ._retry_compose import wait_exponential as wait_exponential
from ._retry_compose import wait_exponential_jitter as wait_exponential_jitter
from ._retry_compose import wait_fixed as wait_fixed
from ._retry_compose import wait_full_jitter as wait_full_jitter
from ._retry_compose import wait_incrementing as wait_incrementing
from ._retry_compose import wait_none as wait_none
from ._retry_compose import wait_random as wait_random
from ._retry_compose import wait_random_exponential as wait_random_exponential
from .retry import ConstantDelayRetryPolicy as ConstantDelayRetryPolicy
from .retry import ExponentialBackoffRetryPolicy as ExponentialBackoffRetryPolicy
from .retry import RetryInfo as RetryInfo
from .retry import RetryPolicy as RetryPolicy

__all__ = [
    "ComposedRetryPolicy",
    "ConstantDelayRetryPolicy",
    "ExponentialBackoffRetryPolicy",
    "RetryCondition",
    "RetryInfo",
    "RetryPolicy",
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
    "time_unit_type",
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
