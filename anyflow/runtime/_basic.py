"""``BasicRuntime``: runs in one process, in memory, on anyio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.lowlevel import checkpoint

from .._backends._wakeup import Wakeup
from ..errors import WorkflowRuntimeError
from ..events import InternalEvent
from ._adapters import ExternalRunAdapter, InternalRunAdapter, Runtime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine
    from types import TracebackType

    from anyio.abc import TaskGroup

    from .._core.state import Outcome
    from .._core.ticks import Tick

__all__ = ["BasicRuntime"]

T = TypeVar("T")


class _Mailbox(Generic[T]):
    """An unbounded single-consumer queue that hands over everything ready at once.

    A list and a wake-up rather than a memory object stream: the consumer
    takes a whole batch without an exception per item, and an abandoned mailbox
    needs no closing.  The wake-up is the loop's own (``Wakeup``), not an
    ``anyio.Event``: the driver waits on its inbox for most of a run's life,
    and an event there cost every run in flight about 1 kB on asyncio.
    """

    __slots__ = ("_head", "_interrupted", "_items", "_waiter", "closed")

    def __init__(self) -> None:
        # A list and a read position rather than a deque: an idle run's
        # mailboxes then cost a few dozen bytes instead of a deque's 600.
        self._items: list[T] = []
        self._head = 0
        self._waiter: Wakeup | None = None
        self._interrupted = False
        self.closed = False

    def interrupt(self) -> None:
        """Make a pending or the next ``get_batch`` return, even with nothing."""
        self._interrupted = True
        self._wake()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def get(self) -> T | None:
        """Wait for the next item; None once closed and drained."""
        while self._head == len(self._items):
            if self.closed:
                return None
            self._waiter = waiter = Wakeup.new()
            await waiter
        item = self._items[self._head]
        self._head += 1
        if self._head == len(self._items):
            self._items.clear()
            self._head = 0
        return item

    async def get_batch(self) -> list[T]:
        """Wait for items; return all that are ready ([] once closed and drained,
        or when interrupted)."""
        while self._head == len(self._items):
            if self.closed or self._interrupted:
                self._interrupted = False
                return []
            self._waiter = waiter = Wakeup.new()
            await waiter
        items = self._items[self._head :] if self._head else self._items
        self._items = []
        self._head = 0
        return items


class _Run:
    """What the two adapters of one in-memory run share."""

    __slots__ = ("consumed", "done", "inbox", "internal", "outcome", "published", "run_id")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.inbox: _Mailbox[Tick] = _Mailbox()
        self.published: _Mailbox[Any] = _Mailbox()
        self.outcome: Outcome | None = None
        self.done: anyio.Event | None = None  # made when someone waits
        self.consumed = False
        self.internal = False  # a consumer asked for internal events


class _Internal(InternalRunAdapter):
    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def run_id(self) -> str:
        return self._run.run_id

    def receive_ticks(self) -> Coroutine[Any, Any, list[Tick]]:
        # The mailbox's own coroutine, not one awaiting it: the driver waits
        # here for most of a run's life, so a frame more would cost every run
        # in flight its bytes.
        return self._run.inbox.get_batch()

    def post_tick(self, tick: Tick) -> None:
        self._run.inbox.put(tick)

    def interrupt(self) -> None:
        self._run.inbox.interrupt()

    @property
    def wants_internal_events(self) -> bool:
        return self._run.internal

    def publish(self, event: Any) -> None:
        self._run.published.put(event)

    def now(self) -> float:
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_until(deadline)

    def finish(self, outcome: Outcome) -> None:
        run = self._run
        run.outcome = outcome
        run.published.close()
        run.inbox.close()
        if run.done is not None:
            run.done.set()


class _External(ExternalRunAdapter):
    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def run_id(self) -> str:
        return self._run.run_id

    def send_tick(self, tick: Tick) -> None:
        if self._run.outcome is not None:
            raise WorkflowRuntimeError(
                f"run {self._run.run_id!r} has finished; {_describe(tick)} was not delivered"
            )
        self._run.inbox.put(tick)

    def events(self, *, expose_internal: bool = False) -> AsyncIterator[Any]:
        if self._run.consumed:
            raise WorkflowRuntimeError(
                f"the events of run {self._run.run_id!r} are already being streamed: "
                "stream_events() has one consumer at a time; fan the events out from that "
                "loop, or close it before starting another"
            )
        self._run.consumed = True
        if expose_internal:
            self._run.internal = True
        return _Events(self._run, expose_internal)

    @property
    def outcome(self) -> Outcome | None:
        return self._run.outcome

    def ready(self, expose_internal: bool) -> bool:
        """Whether a stream's next step returns at once: an event it shows is
        queued, or the stream is over."""
        published = self._run.published
        if published.closed:
            return True
        items = published._items
        if expose_internal:
            return published._head < len(items)
        return any(not isinstance(ev, InternalEvent) for ev in items[published._head :])

    async def wait_finished(self) -> Outcome:
        run = self._run
        if run.outcome is None:
            if run.done is None:
                run.done = anyio.Event()
            await run.done.wait()
        else:
            await checkpoint()
        assert run.outcome is not None
        return run.outcome


class _Events:
    """The stream's iterator.  A plain iterator rather than an async generator,
    so that a consumer may ``break`` out of its loop without leaving a generator
    to be finalized (which trio warns about); letting go of it (or ``aclose()``)
    frees the stream for the next consumer, who gets the events not yet taken.
    """

    __slots__ = ("_expose_internal", "_run")

    def __init__(self, run: _Run, expose_internal: bool) -> None:
        self._run: _Run | None = run
        self._expose_internal = expose_internal

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> Any:
        run = self._run
        if run is None:
            raise StopAsyncIteration
        while (event := await run.published.get()) is not None:
            if self._expose_internal or not isinstance(event, InternalEvent):
                return event
        self._release()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._run is not None:
            self._run.consumed = False
            self._run = None

    def __del__(self) -> None:
        self._release()


def _describe(tick: Tick) -> str:
    event = getattr(tick, "event", None)
    return type(event).__name__ if event is not None else type(tick).__name__


class BasicRuntime(Runtime):
    """Hosts runs in this process, each in the runtime's own task group.

    ``async with BasicRuntime() as runtime:`` then ``wf.run(..., runtime=runtime)``
    starts runs that live until the block ends.  Leaving the block cancels the
    runs still going (they end as cancelled, their steps' ``finally`` blocks
    run) and returns only when nothing of them is left.  Outside its block, a
    BasicRuntime still makes runs, which run only while their caller awaits
    or streams them (``anyflow.handler``).

    A run's clock (its timeout, retry delays, wait and step timeouts) is the
    event loop's, ``anyio.current_time()``: a test drives it by putting the
    loop on virtual time (``anyflow.testing.virtual_time()``).
    """

    def __init__(self) -> None:
        self._task_group: TaskGroup | None = None

    @property
    def is_hosting(self) -> bool:
        return self._task_group is not None

    @property
    def is_launched(self) -> bool:
        """Always True: outside its block a BasicRuntime's runs are driven by
        whoever awaits or streams them."""
        return True

    def launch_sync(self) -> None:
        """Nothing to do: a BasicRuntime not entered serves runs driven by
        their callers (it cannot host runs from sync code)."""

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        run = _Run(run_id)
        return _Internal(run), _External(run)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], *, name: str) -> None:
        if self._task_group is None:
            raise RuntimeError(
                "this BasicRuntime is not running: start runs inside "
                "`async with BasicRuntime() as runtime:`"
            )
        self._task_group.start_soon(fn, name=name)

    async def __aenter__(self) -> BasicRuntime:
        if self._task_group is not None:
            raise RuntimeError("this BasicRuntime is already running; a runtime is entered once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group = self._task_group
        assert task_group is not None
        task_group.cancel_scope.cancel()
        try:
            # The block's own exception is not handed to the task group, which
            # would wrap it in an ExceptionGroup; returning None re-raises it as is.
            await task_group.__aexit__(None, None, None)
        finally:
            self._task_group = None
        return None
