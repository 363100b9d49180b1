"""``Workflow``: a class whose ``@step`` methods route events to each other."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from ._core.state import RunSpec, RunState, StepSpec
from ._steps import StepInfo, read_step, state_type_of
from ._validation import catchers, validate
from .context import Context
from .decorators import STEP_ATTRIBUTE, check_timeout
from .errors import StateTypeError, WorkflowRuntimeError, WorkflowStepDoesNotExistError
from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowIdleEvent,
)
from .handler import WorkflowHandler

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["Workflow"]


class Workflow:
    """Subclass it and write ``@step`` methods.

    The steps are read when the class is defined (a step without an event
    annotation is an error then); the event graph is validated when the first
    instance is built, before anything runs.

    :param timeout: seconds a run may take before it ends with
        ``WorkflowTimeoutError``; None (the default) for no limit.
    """

    state_type: ClassVar[type[Any] | None] = None
    """The class of the run's state (attrs, pydantic or a ``DictState`` subclass),
    the most derived of the steps' ``ctx: Context[MyState]`` annotations; None
    for the default ``DictState``."""
    _state_conflict: ClassVar[Exception | None] = None
    """Steps that disagree on the state class: raised when a context is built."""
    _step_infos: ClassVar[dict[str, StepInfo]] = {}
    _start_class: ClassVar[type[StartEvent] | None] = None
    _catchers: ClassVar[dict[str, tuple[str, int]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Annotations may name classes local to the function defining this
        # workflow; that function's frame is the caller of type.__new__.
        frame = sys._getframe(1)
        localns = {**frame.f_locals, cls.__name__: cls}
        steps: dict[str, StepInfo] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Workflow):
                steps.update(base.__dict__.get("_step_infos", {}))
        for name, attr in cls.__dict__.items():
            options = getattr(attr, STEP_ATTRIBUTE, None)
            if options is not None:
                steps[name] = read_step(cls.__qualname__, name, attr, options, localns)
            elif name in steps:
                del steps[name]  # overridden by something that is not a step
        cls._step_infos = steps
        try:
            cls.state_type, cls._state_conflict = state_type_of(cls.__qualname__, steps), None
        except StateTypeError as exc:
            # Raised when a run's context is built, as llama-index-workflows does.
            cls.state_type, cls._state_conflict = None, exc
        cls._start_class = None

    def __init__(self, timeout: float | None = None) -> None:
        check_timeout(timeout)
        cls = type(self)
        if cls._start_class is None:
            cls._start_class = validate(cls.__qualname__, cls._step_infos)
            cls._catchers = catchers(cls.__qualname__, cls._step_infos)
        self.timeout = timeout
        self._spec = RunSpec(
            steps={
                name: StepSpec(name, info.accepts, info.options.num_workers, info.options.timeout)
                for name, info in cls._step_infos.items()
            },
            stop_types=(StopEvent,),
            publish_types=(InputRequiredEvent,),
            timeout=timeout,
            catchers=cls._catchers,
            buffer_types=(Event,),
            idle_event=WorkflowIdleEvent(),
        )

    @classmethod
    def steps(cls) -> dict[str, StepInfo]:
        """The workflow's steps, by name."""
        return dict(cls._step_infos)

    @property
    def start_event_class(self) -> type[StartEvent]:
        start = type(self)._start_class
        assert start is not None
        return start

    def run(
        self,
        start_event: StartEvent | None = None,
        *,
        ctx: Context[Any] | None = None,
        runtime: Runtime | None = None,
        run_id: str | None = None,
        **fields: Any,
    ) -> WorkflowHandler:
        """Start a run: ``await`` it, enter it with ``async with``, or pass ``runtime``.

        The start event is ``start_event``, or the workflow's start event class
        built from ``fields``.  With a runtime that keeps runs (``DurableRuntime``),
        ``run_id`` names the run: a recorded one is resumed (or its recorded
        outcome returned), and the start event may then be left out.

        :raises TypeError: if the fields do not fit the start event class.
        """
        start_class = self.start_event_class
        keeps_runs = runtime is not None and runtime.keeps_runs
        if ctx is not None and ctx._saved_run() is not None:
            if keeps_runs:
                raise WorkflowRuntimeError(
                    "a runtime that keeps runs resumes a run from its own record: pass "
                    "run_id= (and no saved context) to resume a run it recorded"
                )
            if start_event is not None or fields:
                raise TypeError(
                    "this context resumes a saved run, which has started already: "
                    "pass no start event or fields to run()"
                )
            return WorkflowHandler(self, None, ctx, run_id or uuid.uuid4().hex, runtime)
        elif start_event is None and not fields and run_id is not None and keeps_runs:
            pass  # resume the recorded run; the runtime makes a default start event if new
        elif start_event is None:
            start_event = start_class(**fields)
        elif fields:
            raise TypeError(
                f"pass either a start event or its fields to run(), not both "
                f"(got start_event and {', '.join(sorted(fields))})"
            )
        elif not isinstance(start_event, start_class):
            raise TypeError(
                f"{type(self).__qualname__} starts with {start_class.__name__}, "
                f"not {type(start_event).__name__}"
            )
        if ctx is None:
            ctx = Context(self)
        elif ctx._workflow is not self and type(ctx._workflow) is not type(self):
            raise WorkflowRuntimeError(
                f"this Context was made for {type(ctx._workflow).__qualname__}, "
                f"not {type(self).__qualname__}"
            )
        else:
            ctx._check_free()
        return WorkflowHandler(self, start_event, ctx, run_id or uuid.uuid4().hex, runtime)

    def _check_sendable(self, event: Event, step: str | None, live: RunState | None = None) -> None:
        """Raise now, in the sender, what the run could only drop later.

        An event no step accepts is still taken when it is a HumanResponseEvent
        (kept for a later ``wait_for_event``) or when a step of the ``live``
        run state is waiting for one like it right now.
        """
        if not isinstance(event, Event):
            raise TypeError(f"send_event takes an Event, not {type(event).__name__}")
        name = type(self).__qualname__
        if live is not None and any(
            (step is None or w.step == step) and w.matches(event) for w in live.waiting.values()
        ):
            return
        if step is None:
            if not self._spec.route(type(event)) and not isinstance(event, HumanResponseEvent):
                accepted = sorted(
                    {t.__name__ for s in self._step_infos.values() for t in s.accepts}
                )
                raise WorkflowRuntimeError(
                    f"no step of {name} accepts {type(event).__name__}; its steps accept: "
                    f"{', '.join(accepted)} (a step's ctx.wait_for_event takes any event type "
                    "while it waits; a HumanResponseEvent is also kept for it if sent early)"
                )
            return
        info = self._step_infos.get(step)
        if info is None:
            raise WorkflowStepDoesNotExistError(
                f"{name} has no step {step!r}; its steps are: {', '.join(sorted(self._step_infos))}"
            )
        if not isinstance(event, info.accepts):
            raise WorkflowRuntimeError(
                f"step {name}.{step} does not accept {type(event).__name__}; it accepts: "
                f"{', '.join(t.__name__ for t in info.accepts)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(timeout={self.timeout!r})"
