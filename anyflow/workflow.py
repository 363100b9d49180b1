"""``Workflow``: a class whose ``@step`` methods route events to each other."""

from __future__ import annotations

import sys
import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.lowlevel

from ._core.state import RunSpec, RunState, StepSpec
from ._resource_checks import check_resources
from ._step_config import StepConfig
from ._steps import StepInfo, fan_in_problem, read_step, state_type_of
from ._validation import (
    GRAPH_CHECKS,
    catchers,
    check_graph_check_names,
    start_and_stop,
    validate,
)
from .context import Context
from .decorators import STEP_ATTRIBUTE, StepOptionError, check_timeout
from .errors import (
    StartEventError,
    StateTypeError,
    WorkflowRuntimeError,
    WorkflowStepDoesNotExistError,
    WorkflowValidationError,
)
from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowIdleEvent,
)
from .handler import WorkflowHandler
from .resources import ResourceManager
from .runtime import get_current_runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from .runtime import Runtime

__all__ = ["Workflow"]

_NO_SLOT: AbstractAsyncContextManager[None] = nullcontext()


def _info_of(name: str, fn: Callable[..., Any]) -> StepInfo:
    """The ``StepInfo`` behind a step function (from ``_get_steps()``)."""
    config = getattr(fn, "_step_config", None)
    if not isinstance(config, StepConfig):
        raise WorkflowValidationError(
            f"_get_steps() gave {fn!r} as step {name!r}, which is not a step of an anyflow "
            "workflow (it has no _step_config): give the functions Workflow._get_steps() gives"
        )
    return config.info


class Workflow:
    """Subclass it and write ``@step`` methods.

    The steps are read when the class is defined (a step without an event
    annotation is an error then).  Building an instance checks that there is
    one start event class and one stop event class (``WorkflowConfigurationError``);
    the rest of the event graph is checked by ``validate()`` and by the first
    ``run()``, before anything runs, as llama-index-workflows does, so code that
    builds a workflow it never runs does not fail.

    :param timeout: seconds a run may take before it ends with
        ``WorkflowTimeoutError``; None (the default) for no limit.
    :param disable_validation: skip the event-graph checks (``validate()`` still runs them).
    :param verbose: print each step's start and end.
    :param num_concurrent_runs: at most this many runs of this instance execute at
        once; the others wait for a slot before they start.
    :param runtime: the runtime this workflow's runs use when ``run()`` names none.
    :param workflow_name: the workflow's name (default: ``module.QualifiedClassName``).
    :param skip_graph_checks: graph checks to skip: ``reachability`` (every step can
        be reached from what the caller sends), ``terminal_event`` (every returned
        event has a taker) and ``dead_end`` (every step can lead to an output).
    """

    state_type: ClassVar[type[Any] | None] = None
    """The class of the run's state (attrs, pydantic or a ``DictState`` subclass),
    the most derived of the steps' ``ctx: Context[MyState]`` annotations; None
    for the default ``DictState``."""
    _state_conflict: ClassVar[Exception | None] = None
    """Steps that disagree on the state class: raised when a context is built."""
    _step_infos: ClassVar[dict[str, StepInfo]] = {}
    _start_class: ClassVar[type[StartEvent] | None] = None
    _stop_class: ClassVar[type[StopEvent] | None] = None
    _validated: ClassVar[tuple[frozenset[str], bool] | None] = None
    _step_functions: ClassVar[dict[str, Callable[..., Any]]] = {}
    """Steps added with ``add_step`` (``@step(workflow=...)``), by name."""
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
                attr._step_config = StepConfig(steps[name])  # the incumbent's view of it
            elif name in steps:
                del steps[name]  # overridden by something that is not a step
        cls._step_functions = {}
        cls._set_steps(steps)

    @classmethod
    def _set_steps(cls, steps: dict[str, StepInfo]) -> None:
        cls._step_infos = steps
        try:
            cls.state_type, cls._state_conflict = state_type_of(cls.__qualname__, steps), None
        except StateTypeError as exc:
            # Raised when a run's context is built, as llama-index-workflows does.
            cls.state_type, cls._state_conflict = None, exc
        cls._start_class = None
        cls._validated = None

    @classmethod
    def add_step(
        cls, func: Callable[..., Any], *, localns: Mapping[str, Any] | None = None
    ) -> None:
        """Add a function defined outside the class as a step of this workflow
        (what ``@step(workflow=cls)`` does).  It takes no ``self``; its name is the
        step's name.

        :raises WorkflowValidationError: if it is not decorated with ``@step``, or
            the workflow has a step of that name already.
        """
        options = getattr(func, STEP_ATTRIBUTE, None)
        name = getattr(func, "__name__", repr(func))
        if options is None:
            raise WorkflowValidationError(
                f"Step function {name} is missing the `@step` decorator: write "
                f"@step(workflow={cls.__name__}) above it instead of calling add_step"
            )
        if name in cls._step_infos:
            raise WorkflowValidationError(
                f"A step {name} is already part of this workflow, please choose another name: "
                f"{cls.__qualname__} has a step {name!r}, and a step's name is its key"
            )
        info = read_step(cls.__qualname__, name, func, options, localns or {}, method=False)
        func._step_config = StepConfig(info)  # type: ignore[attr-defined]
        cls._step_functions = {**cls._step_functions, name: func}
        cls._set_steps({**cls._step_infos, name: info})

    def __init__(
        self,
        timeout: float | None = None,
        disable_validation: bool = False,
        verbose: bool = False,
        resource_manager: ResourceManager | None = None,
        num_concurrent_runs: int | None = None,
        runtime: Runtime | None = None,
        workflow_name: str | None = None,
        skip_graph_checks: Iterable[str] | None = None,
        serializer: Any = None,
    ) -> None:
        check_timeout(timeout)
        if num_concurrent_runs is not None and (
            isinstance(num_concurrent_runs, bool)
            or not isinstance(num_concurrent_runs, int)
            or num_concurrent_runs < 1
        ):
            raise StepOptionError(
                "num_concurrent_runs must be an integer greater than 0 or None, "
                f"not {num_concurrent_runs!r}"
            )
        if serializer is not None:
            raise WorkflowValidationError(
                "Workflow(serializer=...) is not supported: anyflow has one converter for "
                "events and state (cattrs), so there is nothing to choose; drop the argument "
                "(see docs/migration.md)"
            )
        skips = frozenset(skip_graph_checks or ())
        check_graph_check_names(skips, GRAPH_CHECKS, "Workflow(skip_graph_checks=...)")
        cls = type(self)
        if cls._start_class is None:
            cls._start_class, cls._stop_class = start_and_stop(cls.__qualname__, cls._step_infos)
            cls._catchers = catchers(cls.__qualname__, cls._step_infos)
        self.timeout = timeout
        self._disable_validation = disable_validation
        self._verbose = verbose
        if resource_manager is not None and not isinstance(resource_manager, ResourceManager):
            raise TypeError(
                f"resource_manager takes an anyflow ResourceManager, not {resource_manager!r}"
            )
        self._resource_manager = resource_manager or ResourceManager()
        self._num_concurrent_runs = num_concurrent_runs
        self._run_slots: tuple[object, anyio.Semaphore] | None = None
        self._runtime = runtime if runtime is not None else get_current_runtime()
        self._workflow_name = workflow_name
        self._skip_graph_checks = skips
        self._spec = RunSpec(
            steps={
                name: StepSpec(
                    name,
                    info.accepts,
                    info.options.num_workers,
                    info.options.timeout,
                    tuple(t for _, t in info.slots),
                    exact=info.options.accept_event_subclasses is False,
                )
                for name, info in cls._step_infos.items()
            },
            stop_types=(StopEvent,),
            publish_types=(InputRequiredEvent,),
            timeout=timeout,
            catchers=cls._catchers,
            buffer_types=(Event,),
            idle_event=WorkflowIdleEvent(),
        )

    def _validate(self, *, force: bool = False) -> bool:
        """Check the event graph (not at all for a workflow built with
        ``disable_validation``, unless ``force``); return whether it asks for
        human input.

        The steps checked are those ``_get_steps()`` gives (llama-index-workflows'
        hook; code may replace it on an instance to check a few steps).  The
        result is kept once per class and set of skipped checks (a class's
        steps change only through ``add_step``, which clears it).
        """
        if self._disable_validation and not force:
            return False
        cls = type(self)
        if "_get_steps" in self.__dict__ or type(self)._get_steps is not Workflow._get_steps:
            steps = {name: _info_of(name, fn) for name, fn in self._get_steps().items()}
            return validate(cls.__qualname__, steps, self._skip_graph_checks)
        cached = cls._validated
        if cached is not None and cached[0] == self._skip_graph_checks:
            return cached[1]
        uses_hitl = validate(cls.__qualname__, cls._step_infos, self._skip_graph_checks)
        cls._validated = (self._skip_graph_checks, uses_hitl)
        return uses_hitl

    def _get_steps(self) -> dict[str, Callable[..., Any]]:
        """Every step's function by name (llama-index-workflows' name): methods
        bound to this workflow, functions added with ``add_step`` as they are;
        each carries its ``_step_config``."""
        cls = type(self)
        added = cls._step_functions
        return {
            name: added[name] if name in added else getattr(self, name) for name in cls._step_infos
        }

    def validate(
        self, *, validate_resource_configs: bool = True, validate_resources: bool = False
    ) -> bool:
        """Check the workflow now, also when it was built with ``disable_validation``.

        :returns: whether the workflow asks for human input (a step accepts a
            ``HumanResponseEvent`` or returns an ``InputRequiredEvent``).
        ``validate_resource_configs`` reads every ``ResourceConfig`` file;
        ``validate_resources`` also makes every resource (in a worker thread with
        its own event loop: the values are closed again and thrown away).  Cycles
        of resource factories and factory parameters nobody fills are always
        reported.

        :raises WorkflowValidationError: naming what is wrong and how to fix it.
        """
        type(self)._validated = None
        uses_hitl = self._validate(force=True)
        configs, resources = check_resources(
            type(self)._step_infos,
            self._resource_manager,
            configs=validate_resource_configs,
            factories=validate_resources,
        )
        for title, problems in (("config ", configs), ("", resources)):
            if problems:
                raise WorkflowValidationError(
                    f"Resource {title}validation failed:\n"
                    + "\n".join(f"  - {p}" for p in problems)
                )
        return uses_hitl

    @property
    def _timeout(self) -> float | None:
        return self.timeout

    @property
    def _start_event_class(self) -> type[StartEvent]:
        return self.start_event_class

    @_start_event_class.setter
    def _start_event_class(self, start: type[StartEvent]) -> None:
        # llama-index-workflows keeps the start event class on the instance, and
        # code sets it there: this instance's runs then begin with ``start``.
        if not (isinstance(start, type) and issubclass(start, StartEvent)):
            raise TypeError(f"_start_event_class takes a StartEvent subclass, not {start!r}")
        self._start_override = start

    @property
    def _stop_event_class(self) -> type[StopEvent]:
        return self.stop_event_class

    @property
    def workflow_name(self) -> str:
        """The name given at construction, else ``module.QualifiedClassName``."""
        if self._workflow_name is not None:
            return self._workflow_name
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    @property
    def events(self) -> list[type[Event]]:
        """Every event class the workflow's steps accept or return."""
        seen: dict[type[Event], None] = {}
        for info in type(self)._step_infos.values():
            seen.update(dict.fromkeys(info.accepts))
            seen.update(dict.fromkeys(info.returns))
        return list(seen)

    @property
    def stop_event_class(self) -> type[StopEvent]:
        """The StopEvent class the workflow's steps return."""
        stop = type(self)._stop_class
        assert stop is not None
        return stop

    def _run_slot(self) -> AbstractAsyncContextManager[Any]:
        """What a run holds while it executes: one of ``num_concurrent_runs`` slots
        (runs beyond the limit wait for it before they start), or nothing."""
        if self._num_concurrent_runs is None:
            return _NO_SLOT
        loop = anyio.lowlevel.current_token()
        slots = self._run_slots
        if slots is None or slots[0] != loop:  # one semaphore per event loop
            slots = self._run_slots = (loop, anyio.Semaphore(self._num_concurrent_runs))
        return slots[1]

    @classmethod
    def steps(cls) -> dict[str, StepInfo]:
        """The workflow's steps, by name."""
        return dict(cls._step_infos)

    @property
    def start_event_class(self) -> type[StartEvent]:
        """The StartEvent class the workflow's steps accept."""
        start = self.__dict__.get("_start_override") or type(self)._start_class
        assert start is not None
        return start

    @property
    def runtime(self) -> Runtime:
        """The runtime this workflow's runs use when ``run()`` names none: the one
        given at construction, else the current one then (``Runtime.registering()``),
        else ``anyflow.plugins.basic_runtime``."""
        runtime: Runtime | None = getattr(self, "_runtime", None)
        return runtime if runtime is not None else get_current_runtime()

    def run(
        self,
        start_event: StartEvent | Context[Any] | None = None,
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

        A Context passed first is taken as ``ctx`` (llama-index-workflows'
        ``run(ctx, start_event)`` order).  Without ``runtime``, ``self.runtime``;
        see ``anyflow.handler`` for who runs the run.

        :raises WorkflowValidationError: if the event graph is malformed (checked at
            the first run of the class, unless built with ``disable_validation``).
        :raises TypeError: if the fields do not fit the start event class.
        """
        if isinstance(start_event, Context):
            if ctx is not None:
                raise TypeError("run() got two contexts: pass one, as ctx=")
            start_event, ctx = None, start_event
        for info in type(self)._step_infos.values():
            if info.collection is not None:
                where = f"{type(self).__qualname__}.{info.name}"
                raise WorkflowValidationError(fan_in_problem(where, info.collection))
        if not self._disable_validation:
            self._validate()
        if runtime is None:
            runtime = self.runtime
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
        else:
            start_event = self._get_start_event_instance(start_event, **fields)
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

    def _get_start_event_instance(
        self, start_event: StartEvent | None, **fields: Any
    ) -> StartEvent:
        """A run's start event: ``start_event``, or the start event class built
        from ``fields`` (llama-index-workflows' name for this step of ``run()``).

        :raises StartEventError: (a TypeError and a ValueError) if the fields do
            not fit the class, ``start_event`` is not a ``StartEvent`` of it, or
            both are given (llama-index-workflows logs a warning and drops the
            fields; anyflow refuses them, so none is silently lost).
        """
        start_class = self.start_event_class
        if start_event is None:
            try:
                return start_class(**fields)
            except (TypeError, ValueError) as exc:
                raise StartEventError(
                    f"Failed creating a start event of type '{start_class.__name__}' with the "
                    f"keyword arguments: {fields!r}: {exc}"
                ) from exc
        if not isinstance(start_event, StartEvent):
            raise StartEventError(
                "The 'start_event' argument must be an instance of 'StartEvent'. "
                f"{type(self).__qualname__}.run() got {type(start_event).__name__} "
                f"{start_event!r}: pass a {start_class.__name__}, or its fields as keyword "
                "arguments"
            )
        if fields:
            raise StartEventError(
                f"pass either a start event or its fields to run(), not both "
                f"(got start_event and {', '.join(sorted(fields))}): llama-index-workflows "
                "ignores the fields then, anyflow refuses them so none is silently lost"
            )
        if not isinstance(start_event, start_class):
            raise StartEventError(
                f"{type(self).__qualname__} starts with {start_class.__name__}, "
                f"not {type(start_event).__name__}"
            )
        return start_event

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
            # llama-index-workflows' sentence first (code written for it matches on it).
            raise WorkflowStepDoesNotExistError(
                f"Step {step} does not exist: {name} has no step {step!r}; its steps are: "
                f"{', '.join(sorted(self._step_infos))}"
            )
        if not info.takes(type(event)):
            exactly = " exactly" if info.options.accept_event_subclasses is False else ""
            raise WorkflowRuntimeError(
                f"Step {step} does not accept event of type {type(event)}: step {name}.{step} "
                f"does not accept {type(event).__name__}; it accepts{exactly}: "
                f"{', '.join(t.__name__ for t in info.accepts)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(timeout={self.timeout!r})"
