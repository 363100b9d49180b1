"""``@step``: mark a workflow method as a step, with its configuration.

The decorator only records the configuration; the workflow class reads the
signature when it is defined (annotations may be postponed until then).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import attrs

from ._step_config import StepConfig as StepConfig
from .errors import WorkflowValidationError
from .retry import RetryPolicy, check_retry_policy

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .workflow import Workflow

__all__ = ["StepConfig", "StepGraphCheck", "WorkflowGraphCheck", "catch_error", "step"]

F = TypeVar("F", bound=Callable[..., Any])

STEP_ATTRIBUTE = "__anyflow_step__"

WorkflowGraphCheck = Literal["reachability", "terminal_event", "dead_end"]
"""A graph check ``Workflow(skip_graph_checks=...)`` may skip."""
StepGraphCheck = Literal["reachability", "dead_end"]
"""A graph check ``@step(skip_graph_checks=...)`` may skip for one step."""


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
    skip_graph_checks: tuple[str, ...] = ()
    """Graph checks (``reachability``, ``dead_end``) that do not apply to this step."""
    accept_event_subclasses: bool | None = None
    """What ``@step(accept_event_subclasses=...)`` said: None when it was not
    given (anyflow routes subclasses to the step, and validation refuses a
    workflow where that would differ from llama-index-workflows), True the
    same routing said on purpose, False only the exact classes (see ``step``)."""


class StepOptionError(WorkflowValidationError, ValueError):
    """A ``@step`` option has a value it cannot take.  Both a ValueError (a bad
    argument) and a WorkflowValidationError (what llama-index-workflows raises)."""


def is_free_function(qualname: str) -> bool:
    """Whether a function is not defined in a class body (per PEP 3155 qualnames):
    ``f`` and ``outer.<locals>.f`` are free, ``Cls.f`` and ``outer.<locals>.Cls.f`` are not."""
    if not qualname:
        raise ValueError("is_free_function needs a qualified name, not an empty string")
    parts = qualname.split(".")
    return len(parts) == 1 or parts[-2] == "<locals>"


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    workflow: type[Workflow] | None = None,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    skip_graph_checks: Iterable[str] | None = None,
    accept_event_subclasses: bool | None = None,
) -> Callable[[F], F]: ...


def step(
    fn: F | None = None,
    /,
    *,
    workflow: type[Workflow] | None = None,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    skip_graph_checks: Iterable[str] | None = None,
    accept_event_subclasses: bool | None = None,
) -> F | Callable[[F], F]:
    """Make a method of a ``Workflow`` a step (or, with ``workflow=``, a function).

    The event parameter's annotation says which events the step accepts (a
    union for several); the return annotation says which it produces (``None``
    allowed).  A parameter annotated ``Context`` receives the run's context.

    A step is best an ``async def``.  A plain ``def`` step runs in a worker
    thread (so it may block); it can use ``ctx.send_event``,
    ``ctx.write_event_to_stream`` and ``ctx.collect_events``, not the awaitable
    methods.  A thread cannot be interrupted: cancelling the run (or a step
    timeout) waits for the function to return, and its result is then dropped.

    :param workflow: the workflow class a function defined outside a class
        joins (``Cls.add_step(fn)``); required for such a function.

    :param num_workers: how many events this step may handle at once.  1 by
        default, so a step's read-modify-write of the store cannot race with
        itself; llama-index-workflows defaults to 4 (pass ``num_workers=4`` for
        its concurrency).
    :param retry_policy: what to do when an attempt raises (see ``anyflow.retry``).
    :param timeout: seconds one attempt may execute; an attempt that takes longer
        is interrupted and fails with ``StepTimeoutError`` (so the retry policy
        applies).  Time spent in ``ctx.wait_for_event`` does not count.
    :param skip_graph_checks: graph checks that do not apply to this step:
        ``reachability`` (nothing the caller sends leads to it) or ``dead_end``
        (what it returns never leads to an output).
    :param accept_event_subclasses: whether the step also takes events whose
        class is a subclass of one it accepts.  Unless told, anyflow routes an
        event to every step that accepts its class or a base class of it
        (llama-index-workflows routes only the exact classes unless told
        ``True``).  ``False`` routes only the exact classes to this step;
        ``True`` keeps anyflow's routing and says so.  A workflow where one step
        accepts a class exactly and another, which did not say, accepts it
        through a base class is refused when validated, since the two engines
        would route it differently: say which you mean on the base-class step.

    A step may take several event parameters (a join, llama-index-workflows'
    "collect mode"): ``async def join(self, a: A, b: B) -> C`` is called once
    an ``A`` and a ``B`` have both arrived, with those two; events that arrive
    beyond a set wait for the next one.  Each parameter names one event class;
    parameters of one class are filled in arrival order.
    """
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
        raise StepOptionError(
            f"num_workers must be an integer greater than 0 (a whole number >= 1), "
            f"not {num_workers!r}"
        )
    check_retry_policy(retry_policy)
    check_timeout(timeout)
    if accept_event_subclasses is not None and not isinstance(accept_event_subclasses, bool):
        raise StepOptionError(
            f"accept_event_subclasses must be True or False, not {accept_event_subclasses!r}"
        )
    from ._validation import STEP_GRAPH_CHECKS, check_graph_check_names

    skips = tuple(skip_graph_checks or ())
    check_graph_check_names(skips, STEP_GRAPH_CHECKS, "@step(skip_graph_checks=...)")
    options = StepOptions(
        num_workers=num_workers,
        retry_policy=retry_policy,
        timeout=timeout,
        skip_graph_checks=skips,
        accept_event_subclasses=accept_event_subclasses,
    )
    # A function step's annotations may name classes local to the function
    # that defines it: keep that frame's names for when the step is read.
    caller = sys._getframe(1).f_locals

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@step decorates a function, not {f!r}")
        qualname = getattr(f, "__qualname__", "")
        if workflow is None and qualname and is_free_function(qualname):
            raise WorkflowValidationError(
                f"To decorate {f.__name__} please pass a workflow class to the @step "
                f"decorator. {f.__name__} is not defined in a Workflow class body, so "
                f"write @step(workflow=MyWorkflow) to add it to MyWorkflow"
            )
        setattr(f, STEP_ATTRIBUTE, options)
        if workflow is not None:
            workflow.add_step(f, localns=caller)
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
    # Names visible where it is applied (a class body, the function around it),
    # to read the event annotation now when it names local classes.
    names: dict[str, Any] = {}
    for depth in (3, 2, 1):  # outer frames first: inner names win
        try:
            names.update(sys._getframe(depth).f_locals)
        except ValueError:  # the stack is not that deep
            continue

    def mark(f: F) -> F:
        _check_catcher(f, names)
        step(f)
        setattr(f, STEP_ATTRIBUTE, StepOptions(catch=options))
        return f

    return mark(fn) if fn is not None else mark


def _check_catcher(f: Callable[..., Any], names: dict[str, Any]) -> None:
    """Refuse, when decorated, a ``@catch_error`` function whose event parameter
    is not ``StepFailedEvent`` (as llama-index-workflows does).  Annotations that
    cannot be resolved yet are checked when the workflow class is defined."""
    from ._signature import inspect_signature
    from .events import StepFailedEvent

    try:
        accepted = inspect_signature(f, localns=names).accepted_events
    except (WorkflowValidationError, TypeError):
        return
    types = [t for ts in accepted.values() for t in ts]
    if types != [StepFailedEvent]:
        name = getattr(f, "__name__", repr(f))
        got = ", ".join(getattr(t, "__name__", repr(t)) for t in types) or "no event"
        raise WorkflowValidationError(
            f"@catch_error handler '{name}' must accept StepFailedEvent as its event "
            f"parameter. It takes {got}: write `async def {name}(self, ev: StepFailedEvent, "
            "ctx: Context) -> ...` (the failed step's name, event and error are on it)"
        )
