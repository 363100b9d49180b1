"""The runtime interface: a ``Runtime`` makes, per run, two adapters sharing a run id.

``InternalRunAdapter`` is the driver's side (ticks in, published events and the
outcome out, the clock); ``ExternalRunAdapter`` is the caller's side (ticks in,
published events and the outcome back).  ``BasicRuntime`` implements them in
memory; durable and distributed runtimes implement or decorate them.

The decorator base classes forward every call to an inner object, so a
decorator (journaling, recording, idle release) overrides only what it adds to.
"""

from __future__ import annotations

import contextlib
import contextvars
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import attrs
from anyio.lowlevel import checkpoint

from ..errors import WorkflowRuntimeError
from .vocabulary import Outcome, RunState

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Coroutine,
        Iterator,
        Sequence,
    )
    from types import TracebackType

    from ..context import StateStore
    from ..events import Event
    from ..workflow import Workflow
    from .vocabulary import Command, Tick

__all__ = [
    "ExternalRunAdapter",
    "ExternalRunAdapterDecorator",
    "InternalRunAdapter",
    "InternalRunAdapterDecorator",
    "Recovery",
    "Runtime",
    "RuntimeDecorator",
]


@attrs.frozen
class Recovery:
    """What a runtime that keeps runs knows of a run before its driver starts:
    the state to resume from, how the run ended, or (for a new run) the start
    event it chose when the caller gave none."""

    start_event: Any = None
    """A new run starts with this."""
    state: RunState | None = None
    """The run's state rebuilt from its record; the driver resumes it."""
    outcome: Outcome | None = None
    """The run had finished with this; its events were published again."""


_NO_SCOPE = contextlib.nullcontext()
"""``run_scope()``'s default, one for all runs (it holds no state)."""


class InternalRunAdapter(ABC):
    """The driver's connection to its run."""

    __slots__ = ()  # a run's adapters are many: let subclasses be slotted

    @property
    @abstractmethod
    def run_id(self) -> str: ...

    @abstractmethod
    async def receive_ticks(self) -> list[Tick]:
        """Wait for at least one tick; return every tick that is ready, in arrival order."""

    @abstractmethod
    def post_tick(self, tick: Tick) -> None:
        """Queue a tick from inside the run (a worker's result, a timer)."""

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        """Called once, before the run starts: what the runtime has recorded of
        this run id.  None (the default) starts a new run with ``start_event``.

        A runtime that keeps runs (``Runtime.keeps_runs``) rebuilds a recorded
        run here, loads its state ``store``, and publishes its recorded events
        again; ``start_event`` is None when the caller only asked to resume.
        """
        return None

    async def on_ticks(  # noqa: B027 - an optional hook
        self, ticks: Sequence[Tick], commands: Sequence[Command]
    ) -> None:
        """Called with every tick, in the order the reducer applied them, and the
        commands they caused, before any of those is executed (the write-ahead
        point).  No-op by default."""

    async def on_end(self, outcome: Outcome, final: bool) -> None:  # noqa: B027 - optional
        """Called once, after the run's last event is published and before
        ``finish``.  ``final`` is True when the reducer decided the outcome (it
        follows from the ticks given to ``on_ticks``); False when the run was
        interrupted from outside (its runtime shut down, or the driver broke),
        so a runtime that keeps runs can leave it resumable.  No-op by default.
        """

    @property
    def observes_ticks(self) -> bool:
        """Whether ``on_ticks`` does anything.

        When it does not, the driver applies a worker's tick in the worker's own
        task as soon as it is posted, saving a task switch per step; when it does,
        every tick goes through ``receive_ticks`` and ``on_ticks``.  True for any
        adapter class that overrides ``on_ticks``.
        """
        return type(self).on_ticks is not InternalRunAdapter.on_ticks

    @property
    def wants_internal_events(self) -> bool:
        """Whether a consumer asked for internal events (the driver then publishes
        a ``StepStateChanged`` per step attempt start and end)."""
        return False

    @property
    def schedules_steps(self) -> bool:
        """Whether the adapter decides when step code runs (a simulator): the
        driver then awaits ``step_point`` wherever a step's code may be paused."""
        return False

    async def step_point(
        self, worker_id: int | None, step: str | None, point: str
    ) -> BaseException | None:
        """A place where a step's code may be paused, with ``schedules_steps``:
        ``"start"`` (before the step function), ``"end"`` (after it returned,
        before its result counts), ``"resume"`` (a wait got its answer) and
        ``"store"`` (before each use of the run's state store).  At ``"start"``
        and ``"end"``, an exception returned is raised as the attempt's own
        (fault injection).  Never awaited by default."""
        return None

    @property
    def wraps_steps(self) -> bool:
        """Whether ``step_call`` does anything.

        When it does not, the driver awaits a step attempt directly, so the hook
        costs nothing (not even a call) for runtimes that do not use it.  True
        for any adapter class that overrides ``step_call``.
        """
        return type(self).step_call is not InternalRunAdapter.step_call

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        """Run one attempt of a step: await ``call`` (the step's code, in the
        step's worker task) and return its output event or None.

        Override it to do something around each attempt, such as a tracing span
        that is current while the step's code runs.  ``call`` raises what the
        attempt failed with, ``StepTimeoutError`` and ``StepOutputError``
        included; a cancellation (the run ended or was cancelled, also while
        the step waited in ``wait_for_event``) is not a failure of the step.
        Re-raise what it raises.  Awaited only when ``wraps_steps``.
        """
        return await call

    @property
    def wraps_resources(self) -> bool:
        """Whether ``step_resource`` does anything.

        When it does not, the driver hands a step its resources as they were
        made, without a call.  True for any adapter class that overrides
        ``step_resource``.
        """
        return type(self).step_resource is not InternalRunAdapter.step_resource

    def step_resource(self, step: str, worker_id: int, param: str, value: Any) -> Any:
        """The value one attempt of ``step`` gets for its resource parameter
        ``param``, given the value made (or cached) for it.

        Override it to put something between a step and its resources, such
        as a simulator's fault sites on their method calls; the value made is
        still the one the run caches and closes.  Called only when
        ``wraps_resources``.
        """
        return value

    def run_scope(self) -> contextlib.AbstractContextManager[object]:
        """A context the driver runs the whole run in: a cancel scope here lets
        the runtime stop this one run from outside (it then stays resumable,
        in a runtime that keeps runs), as a server does with runs that only
        wait for input.  Nothing by default."""
        return _NO_SCOPE

    @abstractmethod
    def interrupt(self) -> None:
        """Make a pending (or the next) ``receive_ticks()`` return at once, with
        the ticks that are ready or none: the driver is done waiting."""

    @abstractmethod
    def publish(self, event: Any) -> None:
        """Put ``event`` on the run's outgoing stream."""

    @abstractmethod
    def now(self) -> float:
        """The run's clock, in seconds."""

    @abstractmethod
    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``now() >= deadline``."""

    @abstractmethod
    def finish(self, outcome: Outcome) -> None:
        """The run is over and nothing of it is running any more: close the stream,
        refuse further ticks, release everyone waiting for the outcome."""


class ExternalRunAdapter(ABC):
    """The caller's connection to a run."""

    __slots__ = ()

    @property
    @abstractmethod
    def run_id(self) -> str: ...

    @abstractmethod
    def send_tick(self, tick: Tick) -> None:
        """Deliver a tick from the caller.

        :raises WorkflowRuntimeError: if the run has finished.
        """

    @abstractmethod
    def events(self, *, expose_internal: bool = False) -> AsyncIterator[Any]:
        """The published events, ending after the last one.  One consumer at a time.

        Internal events (``InternalEvent``: step state changes, idleness) are
        produced from the moment a consumer asks for them with ``expose_internal``.

        :raises WorkflowRuntimeError: while another consumer is reading.
        """

    @property
    @abstractmethod
    def outcome(self) -> Outcome | None:
        """How the run ended, or None while it runs."""

    @abstractmethod
    async def wait_finished(self) -> Outcome:
        """Wait until the run is over; return its outcome."""

    async def wait_accepted(self) -> None:
        """Wait until every tick sent so far is safe: recorded, for a runtime
        that keeps runs (or the run has ended).  At once by default."""
        await checkpoint()


_current_runtime: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "anyflow_current_runtime", default=None
)
"""The runtime set by ``Runtime.registering()``: workflows built in that block use it."""

_INCUMBENT_METHODS = ("register", "run_workflow", "get_internal_adapter", "get_external_adapter")


class Runtime(ABC):
    """Hosts runs: makes their adapters and runs their drivers in a task group.

    A runtime is an async context manager; runs it hosts exist only inside its
    block (``async with runtime:``, or between ``await runtime.launch()`` and
    ``await runtime.destroy()`` in the same task).  Outside it, a ``BasicRuntime``
    still makes runs that are driven by whoever awaits or streams them
    (see ``anyflow.handler``); other runtimes refuse to start runs.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        written = [name for name in _INCUMBENT_METHODS if name in cls.__dict__]
        if written:
            raise TypeError(
                f"{cls.__qualname__} implements {', '.join(written)}: that is "
                "llama-index-workflows' runtime plugin interface, which anyflow does not "
                "have. An anyflow runtime implements open_run() and spawn() (see "
                "anyflow.runtime.Runtime), or decorates one (RuntimeDecorator)."
            )

    @property
    def is_hosting(self) -> bool:
        """Whether the runtime's block is entered: runs started with it then run
        in its task group, at once, until they end or the block does."""
        return False

    @property
    def is_launched(self) -> bool:
        """Whether runs may be started with this runtime now.

        The same as ``is_hosting``, except for ``BasicRuntime``, which is
        always ready: outside its block, its runs are driven by their callers.
        """
        return self.is_hosting

    async def launch(self) -> None:
        """Enter the runtime's block in the calling task (no-op if it is entered).

        ``async with runtime:`` is the same and cannot be misused; with
        ``launch()``, call ``await runtime.destroy()`` in the same task, in the
        same scope, like a manual ``__aenter__``/``__aexit__``.
        """
        if self.is_hosting:
            return
        await self.__aenter__()
        self.__dict__["_anyflow_launched"] = True

    async def destroy(self) -> None:
        """Leave the block entered by ``launch()``: runs still going are
        cancelled, and this returns once nothing of them is left.  No-op if
        ``launch()`` did not enter it."""
        if self.__dict__.pop("_anyflow_launched", False):
            await self.__aexit__(None, None, None)

    def launch_sync(self) -> None:
        """Refused: a runtime that hosts runs needs a task group, which lives in
        a running event loop and cannot outlive this call."""
        raise WorkflowRuntimeError(
            f"{type(self).__name__}.launch_sync() cannot work in anyflow: the runtime's runs "
            "live in a task group, which exists only inside a running event loop and cannot "
            "outlive the call that opens it. In async code write `async with runtime:` around "
            "the code that runs workflows (or `await runtime.launch()` ... `await "
            "runtime.destroy()` in one task); from sync code use `anyio.run(main)` with that "
            "inside main."
        )

    def destroy_sync(self) -> None:
        """No-op for a runtime that is not entered; a runtime entered by
        ``launch()`` is left with ``await runtime.destroy()``."""
        if self.is_hosting:
            raise WorkflowRuntimeError(
                f"{type(self).__name__}.destroy_sync() cannot leave a running runtime from "
                "sync code: `await runtime.destroy()` in the task that launched it"
            )

    @contextlib.contextmanager
    def registering(self) -> Iterator[Runtime]:
        """Within this block, workflows built without ``runtime=`` use this runtime
        (``wf.runtime``, and ``anyflow.plugins.get_current_runtime()``)."""
        token = _current_runtime.set(self)
        try:
            yield self
        finally:
            _current_runtime.reset(token)

    @property
    def keeps_runs(self) -> bool:
        """Whether runs are recorded under their id, so that ``wf.run(run_id=...)``
        of a recorded run resumes it (and may then omit the start event)."""
        return False

    def check_event(self, event: Event) -> None:  # noqa: B027 - an optional hook
        """Raise now, in the caller, what this runtime could not record of a
        run's start event later (a runtime that keeps runs: a value JSON
        cannot hold).  ``wf.run()`` calls it before the run starts.  Nothing
        to check by default."""

    @abstractmethod
    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        """Make the two adapters of a new run."""

    @abstractmethod
    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        """Run ``fn()`` in the runtime's task group.

        :raises RuntimeError: if the runtime's block has not been entered.
        """

    @abstractmethod
    async def __aenter__(self) -> Runtime: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class InternalRunAdapterDecorator(InternalRunAdapter):
    """Forwards everything to ``inner``; subclass and override what you add to."""

    __slots__ = ("inner",)

    def __init__(self, inner: InternalRunAdapter) -> None:
        self.inner = inner

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    async def receive_ticks(self) -> list[Tick]:
        return await self.inner.receive_ticks()

    def post_tick(self, tick: Tick) -> None:
        self.inner.post_tick(tick)

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        return await self.inner.recover(workflow, start_event, store)

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self.inner.on_ticks(ticks, commands)

    async def on_end(self, outcome: Outcome, final: bool) -> None:
        await self.inner.on_end(outcome, final)

    @property
    def observes_ticks(self) -> bool:
        if type(self).on_ticks is not InternalRunAdapterDecorator.on_ticks:
            return True
        return self.inner.observes_ticks

    def interrupt(self) -> None:
        self.inner.interrupt()

    def run_scope(self) -> contextlib.AbstractContextManager[object]:
        return self.inner.run_scope()

    @property
    def wraps_steps(self) -> bool:
        if type(self).step_call is not InternalRunAdapterDecorator.step_call:
            return True
        return self.inner.wraps_steps

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        return await self.inner.step_call(step, worker_id, attempt, event, call)

    @property
    def wraps_resources(self) -> bool:
        if type(self).step_resource is not InternalRunAdapterDecorator.step_resource:
            return True
        return self.inner.wraps_resources

    def step_resource(self, step: str, worker_id: int, param: str, value: Any) -> Any:
        return self.inner.step_resource(step, worker_id, param, value)

    @property
    def wants_internal_events(self) -> bool:
        return self.inner.wants_internal_events

    @property
    def schedules_steps(self) -> bool:
        return self.inner.schedules_steps

    async def step_point(
        self, worker_id: int | None, step: str | None, point: str
    ) -> BaseException | None:
        return await self.inner.step_point(worker_id, step, point)

    def publish(self, event: Any) -> None:
        self.inner.publish(event)

    def now(self) -> float:
        return self.inner.now()

    async def sleep_until(self, deadline: float) -> None:
        await self.inner.sleep_until(deadline)

    def finish(self, outcome: Outcome) -> None:
        self.inner.finish(outcome)


class ExternalRunAdapterDecorator(ExternalRunAdapter):
    """Forwards everything to ``inner``; subclass and override what you add to."""

    __slots__ = ("inner",)

    def __init__(self, inner: ExternalRunAdapter) -> None:
        self.inner = inner

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    def send_tick(self, tick: Tick) -> None:
        self.inner.send_tick(tick)

    def events(self, *, expose_internal: bool = False) -> AsyncIterator[Any]:
        return self.inner.events(expose_internal=expose_internal)

    @property
    def outcome(self) -> Outcome | None:
        return self.inner.outcome

    async def wait_finished(self) -> Outcome:
        return await self.inner.wait_finished()

    async def wait_accepted(self) -> None:
        await self.inner.wait_accepted()


class RuntimeDecorator(Runtime):
    """Forwards everything to ``inner``; override ``open_run`` to wrap adapters.

    Entering the decorator enters the inner runtime.
    """

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner

    @property
    def keeps_runs(self) -> bool:
        return self.inner.keeps_runs

    @property
    def is_hosting(self) -> bool:
        return self.inner.is_hosting

    def check_event(self, event: Event) -> None:
        self.inner.check_event(event)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        return self.inner.open_run(run_id)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        self.inner.spawn(fn, name=name)

    async def __aenter__(self) -> RuntimeDecorator:
        await self.inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self.inner.__aexit__(exc_type, exc, tb)
