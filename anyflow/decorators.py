"""``@step``: mark a workflow method as a step, with its configuration.

The decorator only records the configuration; the workflow class reads the
signature when it is defined (annotations may be postponed until then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

from .retry import RetryPolicy, check_retry_policy

__all__ = ["catch_error", "step"]

F = TypeVar("F", bound=Callable[..., Any])

STEP_ATTRIBUTE = "__anyflow_step__"


@attrs.frozen
class CatchOptions:
    """What ``@catch_error(...)`` was given."""

    for_steps: tuple[str, ...] | None = None
    max_recoveries: int = 1


@attrs.frozen
class StepOptions:
    """What ``@step(...)`` was given."""

    num_workers: int = 1
    retry_policy: RetryPolicy | None = None
    timeout: float | None = None
    catch: CatchOptions | None = None
    """Set for ``@catch_error`` steps."""


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Callable[[F], F]: ...


def step(
    fn: F | None = None,
    /,
    *,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
) -> F | Callable[[F], F]:
    """Make an ``async def`` method of a ``Workflow`` a step.

    The event parameter's annotation says which events the step accepts (a
    union for several); the return annotation says which it produces (``None``
    allowed).  A parameter annotated ``Context`` receives the run's context.

    :param num_workers: how many events this step may handle at once.
    :param retry_policy: what to do when an attempt raises (see ``anyflow.retry``).
    :param timeout: seconds one attempt may execute; an attempt that takes longer
        is interrupted and fails with ``StepTimeoutError`` (so the retry policy
        applies).  Time spent in ``ctx.wait_for_event`` does not count.
    """
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
        raise ValueError(f"num_workers must be a whole number >= 1, not {num_workers!r}")
    check_retry_policy(retry_policy)
    check_timeout(timeout)
    options = StepOptions(num_workers=num_workers, retry_policy=retry_policy, timeout=timeout)

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@step decorates an async function, not {f!r}")
        setattr(f, STEP_ATTRIBUTE, options)
        return f

    return mark(fn) if fn is not None else mark


def check_timeout(timeout: float | None) -> None:
    """Raise ValueError unless ``timeout`` is None or a positive number."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")


@overload
def catch_error(fn: F, /) -> F: ...
@overload
def catch_error(
    *, for_steps: list[str] | tuple[str, ...] | None = None, max_recoveries: int = 1
) -> Callable[[F], F]: ...


def catch_error(
    fn: F | None = None,
    /,
    *,
    for_steps: list[str] | tuple[str, ...] | None = None,
    max_recoveries: int = 1,
) -> F | Callable[[F], F]:
    """Make an ``async def`` method the handler of other steps' final failures.

    It is a step that accepts ``StepFailedEvent`` (the failed step's name, the
    event it failed on, the exception's type and message, the attempts made) and
    may return any event, e.g. ``StopEvent(result=fallback)``.  Without
    ``for_steps`` it handles every step that has no handler of its own.  After
    ``max_recoveries`` failures handed to it, the next failure fails the run.
    """
    if isinstance(max_recoveries, bool) or not isinstance(max_recoveries, int):
        raise TypeError(f"max_recoveries must be a whole number, not {max_recoveries!r}")
    if max_recoveries < 1:
        raise ValueError(f"max_recoveries must be a whole number >= 1, not {max_recoveries!r}")
    if isinstance(for_steps, str):
        raise TypeError(f"for_steps takes a list of step names, e.g. [{for_steps!r}]")
    options = CatchOptions(tuple(for_steps) if for_steps is not None else None, max_recoveries)

    def mark(f: F) -> F:
        step(f)
        setattr(f, STEP_ATTRIBUTE, StepOptions(catch=options))
        return f

    return mark(fn) if fn is not None else mark
