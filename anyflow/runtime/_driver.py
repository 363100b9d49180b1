"""The driver: the control loop that turns the pure reducer into a running run.

It is a thin adapter around ``reduce``: receive ticks, reduce them, hand them to
the adapter's write-ahead hook, then execute the commands.  It owns one task
group per run; step workers and timers are tasks in it, and finishing the run
cancels that task group, so nothing of a run outlives it.

Workers are long-lived: each step gets up to ``num_workers`` tasks, started on
demand, that take ``StartWorker`` commands from a per-step stream, so running a
step does not spawn a task.
"""

from __future__ import annotations

import inspect
import logging
import time
import zlib
from collections.abc import Coroutine
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.lowlevel import checkpoint

from .._core.commands import (
    CancelTimer,
    CancelWorker,
    Command,
    Finish,
    Publish,
    ResumeWorker,
    ReturnCollected,
    ScheduleTimer,
    StartWorker,
)
from .._core.reducer import TickRejected, reduce
from .._core.state import Broken, Cancelled, Completed, Failed, Outcome, RunState, TimedOut
from .._core.ticks import (
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
    is_external,
)
from ..context import Context, InternalContext, StateStore
from ..context._context import STEP_CONTEXT
from ..errors import DurabilityError, StepOutputError, StepTimeoutError
from ..events import (
    Event,
    StepFailedEvent,
    StepStateChanged,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
    with_exception,
)
from ..resources import NO_RESOURCES, RunResources
from ._verbose import VerboseAdapter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from anyio.abc import TaskGroup

    from .._core.state import Delivery
    from .._steps import StepInfo
    from ..retry import RetryPolicy
    from ..workflow import Workflow
    from ._adapters import InternalRunAdapter


log = logging.getLogger("anyflow")
"""What the engine says, each record with its run id (``docs/tracing.md``, "What
anyflow logs"): nothing at WARNING for what is handled (a retried attempt, a
failure a ``@catch_error`` step takes, a run failure its caller receives as an
exception); one line at INFO for those, with the traceback only at DEBUG; a
WARNING with the traceback for a run that failed while nobody can observe it."""


def _note(error: BaseException, text: str) -> None:
    notes = getattr(error, "__notes__", None)
    if notes is None:
        error.__notes__ = notes = []  # type: ignore[attr-defined]
    notes.append(text)


def terminal_event(outcome: Outcome) -> StopEvent:
    """The last event published by a run that ended with ``outcome``."""
    match outcome:
        case Completed(stop_event=stop_event):
            event: StopEvent = stop_event
            return event
        case Failed(step=step, error=error, attempts=attempts):
            failed = WorkflowFailedEvent(
                step_name=step,
                exception_type=type(error).__name__,
                exception_message=str(error),
                attempts=attempts,
            )
            if isinstance(error, BaseException):
                with_exception(failed, error)
            return failed
        case TimedOut(timeout=timeout, active_steps=active):
            return WorkflowTimedOutEvent(timeout=timeout, active_steps=active)
        case Broken(step=step, message=message):
            return WorkflowFailedEvent(
                step_name=step, exception_type="WorkflowRuntimeError", exception_message=message
            )
        case Cancelled():
            return WorkflowCancelledEvent()


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


class _WaitSlot:
    """Where a waiting step finds its answer."""

    __slots__ = ("done", "ended", "event", "timed_out", "wakeup")

    def __init__(self) -> None:
        self.done = False
        self.ended = False  # the run ended first
        self.event: Any = None
        self.timed_out = False
        self.wakeup: anyio.Event | None = None


_NO_ENTRIES: dict[Any, Any] = {}
"""A driver's side table before its first entry (timers, waits, collected
events, step timeouts: most runs use none of them).  Shared by every driver,
so never written to: each write site makes the driver's own dict first."""


class Driver:
    """Runs one run of ``workflow`` from ``start_event`` through ``adapter``."""

    __slots__ = (
        "_adapter",
        "_collected",
        "_inline",
        "_outcome",
        "_pools",
        "_resources",
        "_resuming",
        "_scheduled",
        "_scopes",
        "_start_event",
        "_state",
        "_store",
        "_task_group",
        "_timers",
        "_unjournaled",
        "_waits",
        "_wall",
        "_wrapped",
        "_wraps_resources",
        "run_id",
        "unobserved",
        "workflow",
    )

    def __init__(
        self,
        workflow: Workflow,
        start_event: Event | None,
        adapter: InternalRunAdapter,
        store: StateStore[Any],
        saved: RunState | None = None,
    ) -> None:
        if workflow._verbose:
            adapter = VerboseAdapter(adapter)
        self.workflow = workflow
        self.run_id = adapter.run_id
        self._start_event = start_event
        self._adapter = adapter
        self._store = store
        self._state = RunState.initial(workflow._spec) if saved is None else saved
        self._resuming = saved is not None
        self._unjournaled: list[Tick] | None = None  # made by the first collect()
        self._pools: dict[str, _Pool] = {}
        # Made on first entry (see _NO_ENTRIES): a run in flight pays for
        # the tables it uses.
        self._timers: dict[str, anyio.CancelScope] = _NO_ENTRIES
        self._collected: dict[int, tuple[Any, ...] | None] = _NO_ENTRIES
        self._waits: dict[int, _WaitSlot] = _NO_ENTRIES
        self._scopes: dict[int, anyio.CancelScope] = _NO_ENTRIES
        """Cancel scopes of running attempts of steps with a timeout."""
        self._outcome: Outcome | None = None
        self._task_group: TaskGroup | None = None
        self._inline = not adapter.observes_ticks
        self._scheduled = adapter.schedules_steps
        self._wrapped = adapter.wraps_steps
        self._wraps_resources = adapter.wraps_resources
        if self._scheduled:
            store._pause = lambda: adapter.step_point(None, None, "store")
        self._resources: RunResources | None = None  # made when a step needs one
        self._wall: tuple[float, float] | None = None
        """(POSIX time, run clock) read together when the run starts, to show
        run clock times as datetimes (see ``_wall_clock``)."""
        self.unobserved = False
        """Set when the run's handler is dropped before the run ends: nobody can
        receive its failure any more, so its end is logged as a WARNING."""

    @property
    def state(self) -> RunState:
        return self._state

    def now(self) -> float:
        """The run's clock (what ticks' ``now`` are read from)."""
        return self._adapter.now()

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

    async def run(self) -> None:
        """Run to the end; return once nothing of the run is running any more.

        One coroutine from the adapter's scope to the loop over ticks: its
        frame lives as long as the run, so a helper coroutine in between
        would cost every run in flight another frame."""
        adapter = self._adapter
        with adapter.run_scope():
            self._wall = (time.time(), adapter.now())
            replayed_end = False
            try:
                async with anyio.create_task_group() as task_group:
                    self._task_group = task_group
                    try:
                        async with self.workflow._run_slot():
                            first = await self._first_tick()
                            if first is None:
                                replayed_end = True
                                return
                            await self._process([first])
                            while self._outcome is None:
                                await self._process(await adapter.receive_ticks())
                    except DurabilityError as exc:
                        # The run cannot be recorded or recovered: it stops here,
                        # and its record stays as it was.
                        self._outcome = Broken(None, str(exc), exc)
                        self._end_waits()
                        task_group.cancel_scope.cancel()
                    except anyio.get_cancelled_exc_class():
                        # Cancelled from outside: no tick will be processed any
                        # more, so no waiting step may wait for one.
                        if self._outcome is None:
                            self._outcome = Cancelled()
                        self._end_waits()
                        raise
            except anyio.get_cancelled_exc_class():
                if self._outcome is None:
                    self._outcome = Cancelled()
                raise
            except BaseException as exc:
                if self._outcome is None:
                    self._outcome = Broken(None, f"anyflow's driver crashed: {exc!r}")
                raise
            finally:
                outcome = self._outcome
                assert outcome is not None
                with anyio.CancelScope(shield=True):
                    if self._resources is not None:
                        await self._resources.aclose()
                    if not replayed_end:
                        if isinstance(outcome, Failed):
                            _note(
                                outcome.error,
                                f"raised by step {outcome.step!r} (attempt {outcome.attempts})",
                            )
                        adapter.publish(terminal_event(outcome))
                        await adapter.on_end(outcome, final=self._state.outcome is outcome)
                if not replayed_end:
                    _log_end(self.run_id, self.workflow, outcome, self.unobserved)
                adapter.finish(outcome)

    async def _first_tick(self) -> Tick | None:
        """How the run begins: started, resumed from a saved context, or
        recovered from the runtime's record; None if the record says it ended."""
        adapter = self._adapter
        recovery = await adapter.recover(self.workflow, self._start_event, self._store)
        if log.isEnabledFor(logging.DEBUG):
            how = "resumed" if self._resuming or recovery is not None else "started"
            log.debug(
                "run %s of %s %s",
                self.run_id,
                type(self.workflow).__name__,
                how,
                extra={"anyflow_run_id": self.run_id},
            )
        if recovery is None:
            if self._resuming:
                return RunResumed(adapter.now())
            return RunStarted(self._start_event, adapter.now())
        if recovery.outcome is not None:
            self._outcome = recovery.outcome
            return None
        if recovery.state is not None:
            self._state = recovery.state
            return RunResumed(adapter.now(), recovered=True)
        return RunStarted(recovery.start_event, adapter.now())

    def _submit(self, tick: Tick) -> None:
        """A tick from inside the run (a worker's result, a timer)."""
        if self._inline:
            self._state, commands = reduce(self._state, tick)
            for command in commands:
                _EXECUTORS[type(command)](self, command)
        else:
            self._adapter.post_tick(tick)

    async def _process(self, ticks: list[Tick]) -> None:
        """Reduce a batch, commit it through the write-ahead hook, then execute."""
        internal: list[Tick] = []
        external: list[Tick] = []
        for tick in ticks:
            (external if is_external(tick) else internal).append(tick)
        if external:
            # A caller's tick is stamped with the run's clock when it enters the
            # run (the caller has no access to that clock), and is applied after
            # the steps' results of the same batch, so that it never overtakes one.
            now = self._adapter.now()
            ticks = internal + [attrs.evolve(t, now=now) for t in external]
        state = self._state
        commands: list[Command] = []
        for tick in ticks:
            try:
                state, produced = reduce(state, tick)
            except TickRejected as exc:
                raise RuntimeError(f"anyflow bug: the reducer rejected {tick!r}: {exc}") from exc
            commands += produced
        self._state = state
        if not self._inline:
            journal = ticks
            if self._unjournaled is not None:
                journal = self._unjournaled + ticks
                self._unjournaled = None
            await self._adapter.on_ticks(journal, commands)
        for command in commands:
            _EXECUTORS[type(command)](self, command)

    # Calls from steps (see context.StepHost); they run in worker tasks.

    def send_from_step(self, event: Event, step: str | None, worker_id: int) -> None:
        self._submit(EventSent(event, step, now=self._adapter.now(), worker_id=worker_id))

    async def wait(
        self,
        worker_id: int,
        step: str,
        waiter_id: str,
        event_types: tuple[type[Event], ...],
        requirements: tuple[tuple[str, Any], ...],
        waiter_event: Event | None,
        timeout: float | None,  # noqa: ASYNC109 - a reducer timer, not a local deadline
    ) -> tuple[Any, bool]:
        """Suspend a step attempt until a matching event comes: (event, timed out)."""
        if self._waits is _NO_ENTRIES:
            self._waits = {}
        slot = self._waits[worker_id] = _WaitSlot()
        pool = self._pools[step]
        pool.outstanding -= 1  # a waiting step holds no worker slot...
        pool.parked += 1  # ...but its task is blocked: another may be needed
        try:
            self._submit(
                WaitStarted(
                    worker_id,
                    waiter_id,
                    event_types,
                    requirements,
                    waiter_event,
                    timeout,
                    self._adapter.now(),
                )
            )
            if not slot.done:
                slot.wakeup = anyio.Event()
                await slot.wakeup.wait()
                if self._scheduled and not slot.ended:
                    await self._adapter.step_point(worker_id, step, "resume")
            if slot.ended:
                # The run ended while the step waited: the code after the wait
                # must not run.  The run's task group is being cancelled, so
                # this sleep ends in that cancellation.
                await anyio.sleep_forever()
        except BaseException:
            if not slot.done and self._outcome is None:
                # The step's own code stopped the wait (a cancel scope around
                # it): it must get a worker slot back before it goes on.
                self._submit(WaitAbandoned(worker_id, self._adapter.now()))
                if not slot.done:
                    slot.wakeup = anyio.Event()
                    with anyio.CancelScope(shield=True):
                        await slot.wakeup.wait()  # set by ResumeWorker or at finish
            raise
        finally:
            pool.outstanding += 1
            pool.parked -= 1
            del self._waits[worker_id]
        return slot.event, slot.timed_out

    def publish(self, event: Event) -> None:
        self._adapter.publish(event)

    def collect(
        self, worker_id: int, buffer_id: str, event: Event, expected: Sequence[type[Event]]
    ) -> list[Event] | None:
        # Applied at once rather than queued, because the step needs the answer
        # now; it is journaled with the next batch.  That is safe: it only
        # matters to a step that is still running, and a step that was running
        # at a crash is run again, which collects again.
        tick = EventCollected(worker_id, buffer_id, event, expected, self._adapter.now())
        self._state, commands = reduce(self._state, tick)
        if not self._inline:
            if self._unjournaled is None:
                self._unjournaled = [tick]
            else:
                self._unjournaled.append(tick)
        for command in commands:
            _EXECUTORS[type(command)](self, command)
        events = self._collected.pop(worker_id, None)
        return list(events) if events is not None else None

    # Command executors.

    def _start_worker(self, command: StartWorker) -> None:
        pool = self._pools.get(command.step)
        if pool is None:
            pool = self._pools[command.step] = _Pool(self.workflow._step_infos[command.step])
        pool.outstanding += 1
        if pool.outstanding > pool.tasks - pool.parked:
            pool.tasks += 1
            assert self._task_group is not None
            self._task_group.start_soon(self._worker, pool, name=f"anyflow step {command.step}")
        pool.put(command)

    def _publish(self, command: Publish) -> None:
        self._adapter.publish(command.event)

    def _schedule_timer(self, command: ScheduleTimer) -> None:
        self._cancel_timer(CancelTimer(command.timer_id))
        if self._timers is _NO_ENTRIES:
            self._timers = {}
        scope = self._timers[command.timer_id] = anyio.CancelScope()
        assert self._task_group is not None
        self._task_group.start_soon(self._timer, command.timer_id, command.deadline, scope)

    def _cancel_timer(self, command: CancelTimer) -> None:
        scope = self._timers.pop(command.timer_id, None)
        if scope is not None:
            scope.cancel()

    def _return_collected(self, command: ReturnCollected) -> None:
        if self._collected is _NO_ENTRIES:
            self._collected = {}
        self._collected[command.worker_id] = command.events

    def _resume_worker(self, command: ResumeWorker) -> None:
        slot = self._waits[command.worker_id]
        slot.event = command.event
        slot.timed_out = command.timed_out
        slot.done = True
        if slot.wakeup is not None:
            slot.wakeup.set()

    def _cancel_worker(self, command: CancelWorker) -> None:
        scope = self._scopes.get(command.worker_id)
        if scope is not None:
            scope.cancel()

    def _finish(self, command: Finish) -> None:
        """Stop everything of the run.

        Idle workers are let go by closing their pools, and the driver's loop
        by interrupting its wait for ticks; the task group is cancelled only if
        a step or a timer is still busy (a cancel is the costly way out).
        """
        self._outcome = command.outcome
        busy = bool(self._timers or self._waits)
        self._end_waits()
        for pool in self._pools.values():
            pool.close()
            busy = busy or pool.outstanding > 0
        self._adapter.interrupt()
        if busy:
            assert self._task_group is not None
            self._task_group.cancel_scope.cancel()

    def _end_waits(self) -> None:
        """No answer will come now: let every waiting step go (to its end)."""
        for slot in self._waits.values():
            slot.done = slot.ended = True
            if slot.wakeup is not None:
                slot.wakeup.set()

    # Tasks.

    async def _timer(self, timer_id: str, deadline: float, scope: anyio.CancelScope) -> None:
        with scope:
            await self._adapter.sleep_until(deadline)
            if self._timers.get(timer_id) is scope:
                del self._timers[timer_id]
                self._submit(TimerFired(timer_id, self._adapter.now()))

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
                    self,
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


def _log_failure(
    run_id: str, step: str, attempt: int, error: Exception, delay: float | None, catchable: bool
) -> None:
    """One INFO line for a failure the run handles (a retry, a ``@catch_error``
    step); the traceback only at DEBUG.  A failure that ends the run is logged
    with the run's end."""
    if delay is None and not catchable:
        return
    extra = {"anyflow_run_id": run_id}
    traceback = error if log.isEnabledFor(logging.DEBUG) else None
    if delay is not None:
        log.info(
            "run %s: step %r failed (attempt %d) with %r; retrying in %gs",
            run_id,
            step,
            attempt,
            error,
            delay,
            exc_info=traceback,
            extra=extra,
        )
    else:
        log.info(
            "run %s: step %r failed (attempt %d) with %r; its @catch_error step takes over",
            run_id,
            step,
            attempt,
            error,
            exc_info=traceback,
            extra=extra,
        )


def log_unobserved(run_id: str, workflow: Workflow, outcome: Outcome, how: str) -> None:
    """A WARNING, with the traceback, for a run that failed (or timed out, or
    broke) where nobody can receive the exception: ``how`` says why."""
    name = type(workflow).__name__
    error = getattr(outcome, "error", None)
    log.warning(
        "run %s of %s %s, %s",
        run_id,
        name,
        _how_it_ended(outcome),
        how,
        exc_info=error if isinstance(error, BaseException) else None,
        extra={"anyflow_run_id": run_id},
    )


def _how_it_ended(outcome: Outcome) -> str:
    match outcome:
        case Failed(step=step, error=error, attempts=attempts):
            return f"failed: step {step!r} raised {error!r} (attempt {attempts})"
        case TimedOut(timeout=timeout):
            return f"timed out after {timeout:g}s"
        case Broken(message=message):
            return f"broke: {message}"
        case Completed():
            return "completed"
        case Cancelled():
            return "was cancelled"


def _log_end(run_id: str, workflow: Workflow, outcome: Outcome, unobserved: bool) -> None:
    """A run's end: DEBUG when it completed or was cancelled; one INFO line
    when it failed (its caller receives the exception, with the traceback at
    DEBUG), unless its handler was dropped before the end: then nobody will,
    and it is a WARNING with the traceback."""
    extra = {"anyflow_run_id": run_id}
    name = type(workflow).__name__
    if isinstance(outcome, Completed | Cancelled):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("run %s of %s %s", run_id, name, _how_it_ended(outcome), extra=extra)
    elif unobserved:
        log_unobserved(run_id, workflow, outcome, "and its handler was dropped before its end")
    elif log.isEnabledFor(logging.INFO):
        error = getattr(outcome, "error", None)
        traceback = log.isEnabledFor(logging.DEBUG) and isinstance(error, BaseException)
        log.info(
            "run %s of %s %s",
            run_id,
            name,
            _how_it_ended(outcome),
            exc_info=error if traceback else None,
            extra=extra,
        )


def _state_changed(
    name: str,
    state: str,
    worker_id: int,
    event: Event,
    output: Event | None = None,
    raised: str | None = None,
) -> StepStateChanged:
    return StepStateChanged(
        name=name,
        step_state=state,
        worker_id=worker_id,
        input_event_name=type(event).__name__,
        output_event_name=type(output).__name__ if output is not None else None,
        exception_type=raised,
    )


_EXECUTORS: dict[type, Callable[[Driver, Any], None]] = {
    StartWorker: Driver._start_worker,
    Publish: Driver._publish,
    ScheduleTimer: Driver._schedule_timer,
    CancelTimer: Driver._cancel_timer,
    ReturnCollected: Driver._return_collected,
    ResumeWorker: Driver._resume_worker,
    CancelWorker: Driver._cancel_worker,
    Finish: Driver._finish,
}
"""How the driver executes each command (``tests/core/test_completeness.py``
checks that every command has an entry)."""


def _takes_seed(policy: RetryPolicy) -> bool:
    try:
        parameters = inspect.signature(policy.next).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
