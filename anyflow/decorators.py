"""``@step``: mark a workflow method as a step, with its configuration.

The decorator only records the configuration; the workflow class reads the
signature when it is defined (annotations may be postponed until then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

from .retry import RetryPolicy

__all__ = ["step"]

F = TypeVar("F", bound=Callable[..., Any])

STEP_ATTRIBUTE = "__anyflow_step__"


@attrs.frozen
class StepOptions:
    """What ``@step(...)`` was given."""

    num_workers: int = 1
    retry_policy: RetryPolicy | None = None


@overload
def step(fn: F, /) -> F: ...
@overload
def step(*, num_workers: int = 1, retry_policy: RetryPolicy | None = None) -> Callable[[F], F]: ...


def step(
    fn: F | None = None, /, *, num_workers: int = 1, retry_policy: RetryPolicy | None = None
) -> F | Callable[[F], F]:
    """Make an ``async def`` method of a ``Workflow`` a step.

    The event parameter's annotation says which events the step accepts (a
    union for several); the return annotation says which it produces (``None``
    allowed).  A parameter annotated ``Context`` receives the run's context.

    :param num_workers: how many events this step may handle at once.
    :param retry_policy: what to do when an attempt raises (see ``anyflow.retry``).
    """
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
        raise ValueError(f"num_workers must be a whole number >= 1, not {num_workers!r}")
    if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
        raise TypeError(
            f"retry_policy must have a next(elapsed_time, attempts, error) method, "
            f"not {type(retry_policy).__name__}"
        )
    options = StepOptions(num_workers=num_workers, retry_policy=retry_policy)

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@step decorates an async function, not {f!r}")
        setattr(f, STEP_ATTRIBUTE, options)
        return f

    return mark(fn) if fn is not None else mark
