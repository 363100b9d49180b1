"""The runtime interface: a ``Runtime`` makes, per run, two adapters sharing a run id.

``InternalRunAdapter`` is the driver's side (ticks in, published events and the
outcome out, the clock); ``ExternalRunAdapter`` is the caller's side (ticks in,
published events and the outcome back).  ``BasicRuntime`` implements them in
memory; durable and distributed runtimes implement or decorate them.

The decorator base classes forward every call to an inner object, so a
decorator (journaling, recording, idle release) overrides only what it adds to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
    from types import TracebackType

    from .._core.state import Outcome
    from .._core.ticks import Tick

__all__ = [
    "ExternalRunAdapter",
    "ExternalRunAdapterDecorator",
    "InternalRunAdapter",
    "InternalRunAdapterDecorator",
    "Runtime",
    "RuntimeDecorator",
]


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

    async def on_ticks(self, ticks: Sequence[Tick]) -> None:  # noqa: B027 - an optional hook
        """Called with every tick, in the order the reducer applied them, before any
        command they caused is executed (the write-ahead point).  No-op by default."""

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


class Runtime(ABC):
    """Hosts runs: makes their adapters and runs their drivers in a task group.

    A runtime is an async context manager; runs exist only inside its block.
    """

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

    async def on_ticks(self, ticks: Sequence[Tick]) -> None:
        await self.inner.on_ticks(ticks)

    @property
    def observes_ticks(self) -> bool:
        if type(self).on_ticks is not InternalRunAdapterDecorator.on_ticks:
            return True
        return self.inner.observes_ticks

    def interrupt(self) -> None:
        self.inner.interrupt()

    @property
    def wants_internal_events(self) -> bool:
        return self.inner.wants_internal_events

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


class RuntimeDecorator(Runtime):
    """Forwards everything to ``inner``; override ``open_run`` to wrap adapters.

    Entering the decorator enters the inner runtime.
    """

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner

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
