"""The driver: the control loop that turns the pure reducer into a running run.

It is a thin adapter around ``reduce``: receive ticks, reduce them, hand them to
the adapter's write-ahead hook, then execute the commands.  It owns one task
group per run; step workers and timers are tasks in it, and finishing the run
cancels that task group, so nothing of a run outlives it.

Workers are long-lived: each step gets up to ``num_workers`` tasks, started on
demand, that take ``StartWorker`` commands from a per-step stream, so running a
step does not spawn a task.  They live in ``_workers`` (``_Workers``, a base
class of ``Driver``); the last event of a run and the log lines about it, in
``_reporting``.  This module keeps the loop: beginning a run, reducing and
journaling ticks, the calls steps make into the run, and the commands'
executors.  It re-exports the names the other two define, as before.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
import attrs

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
from .._core.state import Broken, Cancelled, Failed, Outcome, RunState
from .._core.ticks import (
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    Tick,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
    is_external,
)
from ..errors import DurabilityError
from ._reporting import _how_it_ended as _how_it_ended
from ._reporting import _log_end as _log_end
from ._reporting import _log_failure as _log_failure
from ._reporting import _note as _note
from ._reporting import _state_changed as _state_changed
from ._reporting import log as log
from ._reporting import log_unobserved as log_unobserved
from ._reporting import terminal_event as terminal_event
from ._verbose import VerboseAdapter
from ._workers import _NO_ENTRIES as _NO_ENTRIES
from ._workers import _output_error as _output_error
from ._workers import _Pool as _Pool
from ._workers import _takes_seed as _takes_seed
from ._workers import _utc as _utc
from ._workers import _Workers

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anyio.abc import TaskGroup

    from ..context import StateStore
    from ..events import Event
    from ..resources import RunResources
    from ..workflow import Workflow
    from ._adapters import InternalRunAdapter


class _WaitSlot:
    """Where a waiting step finds its answer."""

    __slots__ = ("done", "ended", "event", "timed_out", "wakeup")

    def __init__(self) -> None:
        self.done = False
        self.ended = False  # the run ended first
        self.event: Any = None
        self.timed_out = False
        self.wakeup: anyio.Event | None = None


class Driver(_Workers):
    """Runs one run of ``workflow`` from ``start_event`` through ``adapter``."""

    # Besides the slots of _Workers (the ones the workers use).
    __slots__ = (
        "_collected",
        "_inline",
        "_outcome",
        "_pools",
        "_resuming",
        "_start_event",
        "_task_group",
        "_timers",
        "_unjournaled",
        "_waits",
        "unobserved",
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
