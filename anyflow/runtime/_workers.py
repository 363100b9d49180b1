"""The step side of the driver: the worker tasks that run step attempts.

Each step has a ``_Pool`` of long-lived worker tasks, started on demand, that
take ``StartWorker`` commands and turn each attempt into a tick
(``StepCompleted``, or ``StepFailed`` with the retry policy's verdict).  The
worker loop, an attempt's timeout and output check, the retry policy's call
and the adapter's step hooks live here, apart from the control loop in
``_driver``.

``_Workers`` is a base class of ``Driver`` rather than an object of its own:
a run in flight pays for no second object, and the hot loop keeps plain
``self.`` access to the driver's slots.  The slots the workers use are
declared on ``_Workers`` (with their types), the others on ``Driver``; the one
method of the driver they call, ``_submit``, is declared for the type checker
only.
"""

from __future__ import annotations

import inspect
import time
import zlib
from collections.abc import Coroutine
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

import anyio
from anyio.lowlevel import checkpoint

from .._core.ticks import StepCompleted, StepFailed, Tick
from ..context import Context, InternalContext, StateStore
from ..context._context import STEP_CONTEXT
from ..errors import StepOutputError, StepTimeoutError
from ..events import Event, StepFailedEvent, with_exception
from ..resources import NO_RESOURCES, RunResources
from ._reporting import _log_failure, _note, _state_changed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from .._core.commands import StartWorker
    from .._core.state import Delivery, RunState
    from .._steps import StepInfo
    from ..context._faces import StepHost
    from ..retry import RetryPolicy
    from ..workflow import Workflow
    from ._adapters import InternalRunAdapter


_NO_ENTRIES: dict[Any, Any] = {}
"""A driver's side table before its first entry (timers, waits, collected
events, step timeouts: most runs use none of them).  Shared by every driver,
so never written to: each write site makes the driver's own dict first."""


class _Pool:
    """The worker tasks of one step."""

    __slots__ = ("closed", "idle", "info", "outstanding", "parked", "queue", "tasks")

    def __init__(self, info: StepInfo) -> None:
        self.info = info
        self.queue: list[StartWorker] = []  # never longer than num_workers
        self.idle: list[anyio.Event] = []
        """Wake-up events of the worker tasks waiting for a command."""
        self.tasks = 0
        self.outstanding = 0
        """Commands handed to this pool and not yet finished (waits excluded)."""
        self.parked = 0
        """Tasks blocked in a step's wait_for_event (they can take no command)."""
        self.closed = False

    def put(self, command: StartWorker) -> None:
        self.queue.append(command)
        if self.idle:
            self.idle.pop().set()

    def close(self) -> None:
        self.closed = True
        for waiter in self.idle:
            waiter.set()
        self.idle.clear()

    async def get(self) -> StartWorker | None:
        """The next command, or None once the pool is closed."""
        while not self.queue:
            if self.closed:
                return None
            waiter = anyio.Event()
            self.idle.append(waiter)
            await waiter.wait()
        return self.queue.pop(0)


class _Workers:
    """The worker half of ``Driver`` (its one subclass): see the module docstring."""

    # The driver's slots that the workers use, declared here (a slot is
    # declared once along the bases); Driver.__init__ sets them all.
    __slots__ = (
        "_adapter",
        "_resources",
        "_scheduled",
        "_scopes",
        "_state",
        "_store",
        "_wall",
        "_wrapped",
        "_wraps_resources",
        "run_id",
        "workflow",
    )
    workflow: Workflow
    run_id: str
    _adapter: InternalRunAdapter
    _store: StateStore[Any]
    _state: RunState
    _resources: RunResources | None
    _scopes: dict[int, anyio.CancelScope]
    _wall: tuple[float, float] | None
    _scheduled: bool
    _wrapped: bool
    _wraps_resources: bool

    if TYPE_CHECKING:

        def _submit(self, tick: Tick) -> None: ...

    def _wall_clock(self, t: float | None) -> float | None:
        """The POSIX time of ``t`` on the run's clock (which may be monotonic,
        or virtual in a test), for the datetimes a step is shown: both clocks
        were read together when the run started, so times of one run are as
        far apart as on the run's clock."""
        if t is None:
            return None
        if self._wall is None:
            self._wall = (time.time(), self._adapter.now())
        wall, clock = self._wall
        return wall + (t - clock)

    def _retry_delay(
        self, policy: RetryPolicy, name: str, delivery: Delivery, error: Exception, elapsed: float
    ) -> float | None:
        """Ask the step's retry policy, ``elapsed`` seconds after the delivery's
        first attempt began; a policy that fails gives up, with a note."""
        kwargs = {}
        if _takes_seed(policy):
            # Deterministic per delivery and attempt, so a replay draws the same jitter.
            seed = zlib.crc32(f"{self.run_id}:{delivery.event_id}:{name}".encode())
            kwargs["seed"] = seed + delivery.attempt
        try:
            delay = policy.next(elapsed, delivery.attempt, error, **kwargs)
        except Exception as policy_error:
            _note(
                error, f"its retry policy {policy!r} raised {policy_error!r}, so it was not retried"
            )
            return None
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            _note(error, f"its retry policy returned {delay!r}, not a delay >= 0 or None")
            return None
        return delay

    def _wrap_resources(
        self, name: str, worker_id: int, values: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The adapter's ``step_resource`` values, in the same mapping (a
        ``CallResources`` still closes what the call opened)."""
        assert isinstance(values, dict)  # resolve() makes a new one per call
        adapter = self._adapter
        for param, value in list(values.items()):
            values[param] = adapter.step_resource(name, worker_id, param, value)
        return values

    async def _scheduled_call(self, worker_id: int, name: str, call: Awaitable[Any]) -> Any:
        """A step call whose start and end the adapter schedules (a simulator),
        and which it may make fail there (fault injection)."""
        adapter = self._adapter
        try:
            fault = await adapter.step_point(worker_id, name, "start")
        except BaseException:  # cancelled before it started: nothing to warn about
            if isinstance(call, Coroutine):
                call.close()
            raise
        if fault is None:
            output = await call
            fault = await adapter.step_point(worker_id, name, "end")
            if fault is None:
                return output
        elif isinstance(call, Coroutine):
            call.close()  # never started: nothing to warn about
        raise fault

    async def _attempt(
        self,
        worker_id: int,
        name: str,
        attempt: int,
        timeout: float | None,  # noqa: ASYNC109 - the step's own timeout, a cancel scope
        call: Awaitable[Any],
    ) -> Any:
        """Await a step call under its timeout, and check what it returned."""
        if timeout is None:
            output = await call
        else:
            with anyio.CancelScope() as scope:
                if self._scopes is _NO_ENTRIES:
                    self._scopes = {}
                self._scopes[worker_id] = scope
                output = await call
            del self._scopes[worker_id]
            if scope.cancelled_caught:
                raise StepTimeoutError(
                    f"step {name!r} took longer than its timeout of {timeout:g}s "
                    f"(attempt {attempt})"
                )
        if output is not None and not isinstance(output, Event):
            raise _output_error(name, output)
        return output

    async def _worker(self, pool: _Pool) -> None:
        info = pool.info
        name = info.name
        workflow = self.workflow
        store = self._store
        adapter = self._adapter
        submit = self._submit
        policy = info.options.retry_policy
        timeout = info.options.timeout
        catchable = name in self._state.spec.catchers
        wrapped = self._wrapped
        host = cast("StepHost", self)  # the Driver this class is a base of
        while (command := await pool.get()) is not None:
            delivery = command.delivery
            worker_id = command.worker_id
            started = adapter.now()
            # When the delivery's first attempt began: known once it failed
            # (data saved before that was known gives its first failure).
            began = delivery.first_started_at
            if began is None:
                began = delivery.first_failed_at
            ctx = Context._for_step(
                workflow,
                store,
                InternalContext(
                    host,
                    worker_id,
                    name,
                    delivery.attempt,
                    delivery.last_error,
                    delivery.event_id,
                    started_at=began,
                    failed_at=_utc(self._wall_clock(delivery.last_failed_at)),
                ),
            )
            STEP_CONTEXT.set(ctx)
            if adapter.wants_internal_events:
                adapter.publish(_state_changed(name, "running", worker_id, delivery.event))
            try:
                values = NO_RESOURCES
                if info.resources:
                    if self._resources is None:
                        self._resources = RunResources(getattr(workflow, "_resource_manager", None))
                    values = await self._resources.resolve(info)
                    if self._wraps_resources:
                        values = self._wrap_resources(name, worker_id, values)
                # A join step is called with its set of events (reducer rule 7).
                given = delivery.event if delivery.bound is None else delivery.bound
                call = info.call(workflow, given, ctx, values)
                if self._scheduled:
                    call = self._scheduled_call(worker_id, name, call)
                if wrapped:
                    # The adapter's step_call sees the attempt whole: its
                    # timeout, its output check, its failure.
                    call = self._attempt(worker_id, name, delivery.attempt, timeout, call)
                    output = await adapter.step_call(
                        name, worker_id, delivery.attempt, delivery.event, call
                    )
                elif timeout is None:  # the common case, without a coroutine more
                    output = await call
                    if output is not None and not isinstance(output, Event):
                        raise _output_error(name, output)
                else:
                    output = await self._attempt(worker_id, name, delivery.attempt, timeout, call)
            except Exception as exc:
                now = adapter.now()
                elapsed = now - (started if began is None else began)
                delay = None
                if policy is not None and not isinstance(exc, StepOutputError):
                    delay = self._retry_delay(policy, name, delivery, exc, elapsed)
                failure = None
                if delay is None and catchable:
                    failure = StepFailedEvent(
                        step_name=name,
                        input_event=delivery.event,
                        exception_type=type(exc).__name__,
                        exception_message=str(exc),
                        attempts=delivery.attempt,
                        elapsed_seconds=elapsed,
                        failed_at_timestamp=self._wall_clock(now),
                    )
                    with_exception(failure, exc)
                _log_failure(self.run_id, name, delivery.attempt, exc, delay, catchable)
                # The first failure tells when the delivery's first attempt began.
                first_start = started if delivery.first_started_at is None else None
                tick: Tick = StepFailed(worker_id, exc, delay, now, failure, first_start)
                output = None
            else:
                tick = StepCompleted(worker_id, output, adapter.now())
            if adapter.wants_internal_events:
                raised = type(tick.error).__name__ if isinstance(tick, StepFailed) else None
                adapter.publish(
                    _state_changed(name, "not_running", worker_id, delivery.event, output, raised)
                )
            pool.outstanding -= 1
            submit(tick)
            # A step that never awaits must still let other tasks (and a
            # cancellation) in between two commands.
            await checkpoint()


def _utc(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc)


def _output_error(name: str, output: object) -> StepOutputError:
    return StepOutputError(
        f"Step function {name} returned {type(output).__name__} instead of an Event "
        f"instance ({output!r}); a step returns an Event or None (to end the run with a "
        "value, return StopEvent(result=...))"
    )


def _takes_seed(policy: RetryPolicy) -> bool:
    try:
        parameters = inspect.signature(policy.next).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
