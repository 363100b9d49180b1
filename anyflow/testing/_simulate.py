"""Deterministic simulation of a real workflow: its real steps, under a scheduler.

A step's code may be paused wherever the driver offers a ``step_point``: before
the step function runs, after it returned, when a wait got its answer, and
before each use of the run's state store; and, in the simulator's own hooks,
at a ``fault_point(name)`` and before an async call to one of the step's
resources (``_resources``; the faults planned there are ``_faults``'s).
The simulator pauses every step at every such point, waits until nothing at
all can run, and then lets exactly one thing happen, chosen from a seed or a
hypothesis-drawn schedule: one paused step goes on to its next point, one
outside event is sent, or (once no step can go on) virtual time jumps to the
next timer.  Everything a step does
between two points happens with every other step paused, so the same choices
give the same run, tick for tick, on asyncio and on trio.

The event loop runs on a virtual clock while a simulation lasts
(``_backends._virtual_clock``): step code's own timers (``anyio.sleep``,
``anyio.fail_after``) are due on it, and the scheduler fires them as it
fires the run's timers, one decision each, so a 30 s back-off takes no wall
time and its order against a wait's timeout is explored.  The loop's clock
moves only for step code's timers, not for the run's own.

Steps must not do real I/O under simulation (replace it with fakes): a step
blocked on a socket, a thread or an event from outside the run would make the
run depend on real time, so once nothing else can happen it is a
``SimulationError`` naming the step.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import logging
import random
from collections import Counter
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from ..durable import DurableRuntime, MemoryStore
from ..errors import AnyflowError, StepTimeoutError
from ..events import Event, InternalEvent, StartEvent
from ..runtime import (
    BasicRuntime,
    ExternalRunAdapter,
    InternalRunAdapter,
    InternalRunAdapterDecorator,
    RuntimeDecorator,
)
from ..runtime.clock import VirtualClock, install_virtual_clock
from ..runtime.vocabulary import Completed, Tick
from ._faults import Fault, FaultSites, Halted, InjectedFault
from ._resources import wrap_resource
from ._settle import settle
from ._simulation import (
    Schedule,
    Simulation,
    note_for_hypothesis,
    without_trailing_zeros,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from ..context import StateStore
    from ..handler import WorkflowHandler
    from ..runtime import Runtime
    from ..runtime.vocabulary import Command
    from ..workflow import Workflow

__all__ = [
    "Schedule",
    "Simulation",
    "SimulationError",
    "Simulator",
    "fault_point",
    "simulate",
]


_TIE = 1e-6
"""Timers this close (in seconds) are due at the same time."""

_simulating: ContextVar[bool] = ContextVar("anyflow_simulating", default=False)
_controller: ContextVar[_Controller | None] = ContextVar("anyflow_simulator", default=None)


class _QuietWhileSimulating(logging.Filter):
    """Drop the engine's log records about simulated runs: a failing run is a
    result the test reads (with its report), not news for the log, and a
    search makes hundreds of them.  The run's tasks inherit the context
    variable from the task that starts the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _simulating.get()


logging.getLogger("anyflow").addFilter(_QuietWhileSimulating())


class SimulationError(AnyflowError):
    """The simulation itself could not go on (it ran past its step budget)."""


@attrs.frozen
class _Option:
    kind: Literal["run", "send", "timer"]
    label: str
    key: Any = None


class _Paused:
    __slots__ = ("event", "point", "seq", "step", "worker_id")

    def __init__(self, worker_id: int, step: str, point: str, seq: tuple[int, int]) -> None:
        self.worker_id = worker_id
        self.step = step
        self.point = point
        self.seq = seq
        """The step's place in the line: the first option is the step that
        has waited longest, as an event loop runs its ready tasks in turn."""
        self.event = anyio.Event()


class _Chooser:
    def __init__(self, seed: int | None, schedule: Schedule | None) -> None:
        self._rng = random.Random(seed) if schedule is None else None
        self._choices = schedule.choices if schedule is not None else ()
        self.made: list[int] = []

    def choose(self, count: int) -> int:
        if count == 1:
            return 0  # forced: not a decision, so it uses no choice
        if self._rng is not None:
            index = self._rng.randrange(count)
        else:
            position = len(self.made)
            index = self._choices[position] % count if position < len(self._choices) else 0
        self.made.append(index)
        return index


class _Controller:
    """What the simulated run's adapter and the scheduling loop share."""

    def __init__(
        self,
        workflow: Workflow,
        chooser: _Chooser,
        faults: Sequence[Fault],
        send: Sequence[Event | tuple[float, Event]],
    ) -> None:
        self.workflow = workflow
        self.chooser = chooser
        self.clock = 0.0
        self.loop_clock: VirtualClock | None = None
        """The event loop's clock while the simulation runs: step code's timers."""
        self.paused: dict[int, _Paused] = {}
        self.workers: dict[int, tuple[int, str]] = {}
        """Task id -> the attempt the task executes (worker id, step)."""
        self.timers: list[tuple[float, int, anyio.Event]] = []
        self._timer_seq = 0
        self._decisions = 0
        self._line: dict[int, tuple[int, int]] = {}
        """Task id -> its place in the line of paused steps (see ``_Paused.seq``)."""
        self.pending = _timed(send)
        """Outside events still to send, each with the time it is sent at (None: any time)."""
        self.ticks: list[Tick] = []
        self.events: list[Event] = []
        self.calls: Counter[str] = Counter()
        self.trace: list[str] = []
        self._faults = [f for f in faults if f.kind != "crash" and f.site is None]
        self._crashes = sorted(f.nth for f in faults if f.kind == "crash" and f.site is None)
        self.sites = FaultSites(faults)
        """Fault points and resource calls reached, and the faults planned there."""
        self._started: Counter[str | None] = Counter()
        self.store: StateStore[Any] | None = None
        """The run's state store (of the current process)."""
        self.snapshots: list[Any] = []
        """The store's contents after each recorded tick."""
        self._store_version = -1
        self._late: dict[int, Fault] = {}
        self._batches = 0
        self.crashed = False
        """A crash fault fired: the run's process is to be dropped and resumed."""
        self.cancelling = False
        """A cancel fault fired: the caller is to cancel the run."""

    def _next_pause(self, task: int, worker_id: int) -> tuple[int, int]:
        """A step pauses at one of the engine's points, where an ordinary run
        lets the other ready tasks go first: it goes to the back of the line.
        Steps that pause after the same decision (the one let go, and those
        it started) line up by worker id: the event loops may have run them
        in either order, and the line must not depend on which loop it is."""
        place = (self._decisions, worker_id)
        self._line[task] = place
        return place

    # Called from the run's tasks.

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self.clock:
            await anyio.lowlevel.checkpoint()
            return
        entry = (deadline, self._timer_seq, anyio.Event())
        self._timer_seq += 1
        heapq.heappush(self.timers, entry)
        try:
            await entry[2].wait()
        finally:
            if entry in self.timers:
                self.timers.remove(entry)
                heapq.heapify(self.timers)

    async def step_point(
        self, worker_id: int | None, step: str | None, point: str
    ) -> BaseException | None:
        task = anyio.get_current_task().id
        fault: Fault | None = None
        if point == "start":
            assert worker_id is not None
            assert step is not None
            self.workers[task] = (worker_id, step)
            self.calls[step] += 1
            fault = self._fault_for(step)
            if fault is not None and fault.kind == "timeout":
                self._late[worker_id] = fault
                fault = None
            elif fault is not None and fault.kind == "cancel":
                self.cancelling = True
                fault = None
        else:
            attempt = self.workers.get(task)
            if attempt is None:
                return None  # not a step's task (the caller reading the store)
            worker_id, step = attempt
        place = self._next_pause(task, worker_id)
        paused = self.paused[task] = _Paused(worker_id, step, point, place)
        try:
            await paused.event.wait()
        finally:
            del self.paused[task]
        if fault is not None:
            return InjectedFault(f"simulated fault in step {step!r} (worker {worker_id})")
        if point == "end" and worker_id in self._late:
            del self._late[worker_id]
            return StepTimeoutError(
                f"simulated timeout: step {step!r} (worker {worker_id}) answered too late"
            )
        return None

    def _attempt(self) -> tuple[int, str] | None:
        """(worker id, step) of the step attempt running in this task, if any."""
        return self.workers.get(anyio.get_current_task().id)

    async def _pause(self, worker_id: int, step: str, point: str) -> None:
        """A pause at a fault point or a resource call: code an ordinary run
        goes through without letting other tasks in (a fake answers at
        once), so the step keeps its place in the line, and the first
        option is still the ordinary run's order."""
        task = anyio.get_current_task().id
        place = self._line.get(task)
        if place is None:
            place = self._next_pause(task, worker_id)
        paused = self.paused[task] = _Paused(worker_id, step, point, place)
        try:
            await paused.event.wait()
        finally:
            del self.paused[task]

    async def fault_point(self, name: str) -> None:
        """A ``fault_point(name)`` in step code: a point where the step pauses
        (one more decision), and where a ``Fault(at=name)`` happens."""
        attempt = self._attempt()
        if attempt is None:
            return  # not a step's code
        worker_id, step = attempt
        fault = self.sites.reach(step, ("point", name))
        await self._pause(worker_id, step, f"point {name!r}")
        if fault is None:
            return
        if fault.kind == "error":
            raise InjectedFault(
                f"simulated fault at fault point {name!r} in step {step!r} (worker {worker_id})"
            )
        if fault.kind == "cancel":
            self.cancelling = True
            return
        self.crashed = True
        await anyio.sleep_forever()  # dead: what follows the point never runs

    async def call_site(self, name: str) -> Fault | None:
        """An async call to a method of a step's resource: the step pauses
        before it (one more decision); a planned crash or cancel happens
        there, an error or a timeout is returned for the call to raise."""
        attempt = self._attempt()
        if attempt is None:
            return None  # not a step's code (a task of its own, say)
        worker_id, step = attempt
        fault = self.sites.reach(step, ("call", name))
        await self._pause(worker_id, step, f"call {name}")
        if fault is not None and fault.kind in ("crash", "cancel"):
            self._halt(fault)
            await anyio.sleep_forever()  # the call is never made
        return fault

    def call_site_now(self, name: str) -> Fault | None:
        """A plain call to a method of a step's resource: no pause (its
        caller does not await); a crash or a cancel there unwinds the step's
        code (``Halted``) to its attempt, which waits to be dropped."""
        attempt = self._attempt()
        if attempt is None:
            return None
        fault = self.sites.reach(attempt[1], ("call", name))
        if fault is not None and fault.kind in ("crash", "cancel"):
            self._halt(fault)
            raise Halted
        return fault

    def _halt(self, fault: Fault) -> None:
        if fault.kind == "crash":
            self.crashed = True
        else:
            self.cancelling = True

    async def committed(self, ticks: Sequence[Tick]) -> None:
        """A batch of ticks was recorded (or, without a journal, applied)."""
        self.ticks.extend(ticks)
        self._snapshot(len(ticks))
        batch = self._batches
        self._batches += 1
        if self._crashes and self._crashes[0] == batch:
            self._crashes.pop(0)
            self.crashed = True
            await anyio.sleep_forever()  # dead: nothing the batch caused happens

    def _snapshot(self, ticks: int) -> None:
        """The store's contents after a batch of ``ticks`` ticks, for replay."""
        store = self.store
        if store is None:
            snapshot = None
        elif self.snapshots and store.version == self._store_version:
            snapshot = self.snapshots[-1]
        else:
            snapshot = store.to_dict()
            with contextlib.suppress(Exception):  # else shown as it is now
                snapshot = copy.deepcopy(snapshot)
            self._store_version = store.version
        self.snapshots += [snapshot] * ticks

    def after_crash(self) -> None:
        """Forget the dead process's tasks; the journal, the clock, the faults
        still to come and the outside world go on."""
        self.crashed = False
        self.trace.append("crash")
        self.paused.clear()
        self.workers.clear()
        self._line.clear()
        self.timers.clear()
        self._late.clear()
        self.events.clear()  # the new process's stream starts with the recorded events
        self.store = None
        self._store_version = -1

    def _fault_for(self, step: str) -> Fault | None:
        counts = (self._started[step], self._started[None])
        self._started[step] += 1
        self._started[None] += 1
        for fault in self._faults:
            nth = counts[0] if fault.step is not None else counts[1]
            if (fault.step is None or fault.step == step) and fault.nth == nth:
                self._faults.remove(fault)
                return fault
        return None

    # The scheduling loop.

    def busy(self, handler: WorkflowHandler) -> list[tuple[int, str]]:
        """Step attempts running their own code, blocked elsewhere than at a
        step point or a wait: on a timer of their own, or on something the
        simulation does not control."""
        state = handler.ctx._live_state()
        if state is None:
            return []
        paused = {p.worker_id for p in self.paused.values()}
        return sorted(
            {
                attempt
                for attempt in self.workers.values()
                if attempt[0] in state.workers
                and attempt[0] not in paused
                and attempt[0] not in state.waiting
            }
        )

    def options(self, handler: WorkflowHandler) -> list[_Option]:
        options = [
            _Option("run", f"{p.step}#{p.worker_id} from {p.point}", task)
            for task, p in sorted(self.paused.items(), key=lambda item: item[1].seq)
        ]
        timed: float | None = None
        due_now = False
        if self.pending:
            when, event = self.pending[0]
            if when is not None and when > self.clock + _TIE:
                timed = when  # sent when the clock gets there
            elif self._sendable(event, handler):
                options.append(_Option("send", f"send {type(event).__name__}"))
                due_now = when is not None
        if any(option.kind == "run" for option in options):
            return options  # steps take no time: the clock waits for them
        # Outside events and the clock race.  The run's own timers, the
        # timers of step code (a sleep, a fail_after) and an outside event
        # due at the same time are options each, so any may come first.
        # An event whose time has come goes in before the clock moves on.
        engine = self.timers[0][0] if self.timers else None
        loop = self._loop_deadline() if self.busy(handler) else None
        due = [t for t in (engine, loop, timed) if t is not None]
        if due_now:
            due.append(self.clock)
        if engine is not None and engine <= min(due) + _TIE:
            options.append(_Option("timer", f"time {engine:g}s", "run"))
        if loop is not None and loop <= min(due) + _TIE:
            options.append(_Option("timer", f"time {loop:g}s in step code", "steps"))
        if timed is not None and timed <= min(due) + _TIE:
            name = type(self.pending[0][1]).__name__
            options.append(_Option("timer", f"time {timed:g}s: send {name}", "send"))
        return options

    def _sendable(self, event: Event, handler: WorkflowHandler) -> bool:
        try:
            self.workflow._check_sendable(event, None, handler.ctx._live_state())
        except AnyflowError:
            return False  # not accepted yet: offered again later
        return True

    def _loop_deadline(self) -> float | None:
        """The next timer of the event loop, in the simulation's time.

        The loop's clock moves only for these timers, by as much as they
        need (not for the run's own timers, which the simulator keeps): so
        a timeout the test itself set around the simulation fires only if
        step code sleeps past it."""
        if self.loop_clock is None:
            return None
        deadline = self.loop_clock.next_deadline()
        if deadline is None:
            return None
        return self.clock + max(0.0, deadline - self.loop_clock.now())

    def take(self, option: _Option, handler: WorkflowHandler) -> None:
        self.trace.append(option.label)
        self._decisions += 1
        if option.kind == "run":
            self.paused[option.key].event.set()
        elif option.kind == "send":
            handler.send_event(self.pending.pop(0)[1])
        elif option.key == "send":
            when, outside = self.pending[0]
            assert when is not None
            self.clock = max(self.clock, when)
            if self._sendable(outside, handler):
                handler.send_event(self.pending.pop(0)[1])
            # else: sent once the run takes it, as an untimed one
        elif option.key == "run":
            deadline, _, event = heapq.heappop(self.timers)
            self.clock = max(self.clock, deadline)
            event.set()
        else:
            assert self.loop_clock is not None
            due = self.loop_clock.next_deadline()
            assert due is not None
            self.clock += max(0.0, due - self.loop_clock.now())
            self.loop_clock.jump_to(due)


class _SimInternal(InternalRunAdapterDecorator):
    __slots__ = ("_ctl",)

    def __init__(self, inner: InternalRunAdapter, ctl: _Controller) -> None:
        super().__init__(inner)
        self._ctl = ctl

    def now(self) -> float:
        return self._ctl.clock

    async def sleep_until(self, deadline: float) -> None:
        await self._ctl.sleep_until(deadline)

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self._ctl.committed(ticks)

    def publish(self, event: Any) -> None:
        if not isinstance(event, InternalEvent):
            self._ctl.events.append(event)
        self.inner.publish(event)

    @property
    def schedules_steps(self) -> bool:
        return True

    async def step_point(
        self, worker_id: int | None, step: str | None, point: str
    ) -> BaseException | None:
        return await self._ctl.step_point(worker_id, step, point)

    def step_resource(self, step: str, worker_id: int, param: str, value: Any) -> Any:
        return wrap_resource(value, param, self._ctl)

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        try:
            return await call
        except Halted:
            # A plain resource call crashed the process or cancelled the run
            # there: the attempt stops as at an await, until it is dropped.
            await anyio.sleep_forever()
            raise  # pragma: no cover - sleep_forever only ends by cancellation
        finally:
            # The attempt is over: this task's id may name another task once
            # it ends (the caller's, reading the store), which is no step's.
            task = anyio.get_current_task().id
            self._ctl.workers.pop(task, None)
            self._ctl._line.pop(task, None)


class _SimulatedRuntime(RuntimeDecorator):
    def __init__(self, ctl: _Controller) -> None:
        super().__init__(BasicRuntime())
        self._ctl = ctl

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        return _SimInternal(internal, self._ctl), external


def _timed(send: Sequence[Event | tuple[float, Event]]) -> list[tuple[float | None, Event]]:
    """``send=`` as (time or None, event) pairs, checked."""
    pending: list[tuple[float | None, Event]] = []
    last = 0.0
    for item in send:
        if isinstance(item, Event):
            pending.append((None, item))
            continue
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not isinstance(item[0], int | float)
            or not isinstance(item[1], Event)
        ):
            raise TypeError(
                f"send= takes events, or (time, event) pairs to send an event at a time of "
                f"the simulation's clock (in seconds from the run's start); got {item!r}"
            )
        when = float(item[0])
        if when < last:
            raise ValueError(
                f"send= goes in order, and {type(item[1]).__name__} at t={when:g} comes after "
                f"an event at t={last:g}: sort the events by time"
            )
        last = when
        pending.append((when, item[1]))
    return pending


class Simulator:
    """One simulated run, driven one decision at a time: what ``simulate``
    does in a loop, and what ``strategies.WorkflowStateMachine`` does from
    hypothesis's rules.  An async context manager: leaving it cancels the run
    if it is still going."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        seed: int | None = None,
        schedule: Schedule | None = None,
        faults: Sequence[Fault] = (),
        send: Sequence[Event | tuple[float, Event]] = (),
    ) -> None:
        if seed is not None and schedule is not None:
            raise TypeError("pass seed= or schedule=, not both")
        if seed is None and schedule is None:
            schedule = Schedule()
        self.seed = seed
        self.workflow = workflow
        self._chooser = _Chooser(seed, schedule)
        self._ctl = _Controller(workflow, self._chooser, faults, send)
        self._store = MemoryStore() if any(f.kind == "crash" for f in faults) else None
        self._runtime = self._new_runtime()
        self._handler: WorkflowHandler | None = None
        self.stuck = False

    def _new_runtime(self) -> Runtime:
        runtime = _SimulatedRuntime(self._ctl)
        if self._store is None:
            return runtime
        return DurableRuntime(self._store, runtime, wall_clock=False)

    async def __aenter__(self) -> Simulator:
        try:
            clock = install_virtual_clock()
        except RuntimeError as exc:
            raise SimulationError(
                f"cannot simulate here: {exc} (run simulations one after the other)"
            ) from exc
        self._ctl.loop_clock = clock
        self._quiet = _simulating.set(True)
        self._current = _controller.set(self._ctl)
        try:
            await self._runtime.__aenter__()
        except BaseException:
            clock.close()
            _simulating.reset(self._quiet)
            _controller.reset(self._current)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            if self._handler is not None and not self._handler.is_done():
                await self._handler.cancel_run()
        finally:
            try:
                await self._runtime.__aexit__(*exc_info)
            finally:
                _simulating.reset(self._quiet)
                _controller.reset(self._current)
                if self._ctl.loop_clock is not None:
                    self._ctl.loop_clock.close()

    def start(self, start_event: StartEvent | None = None, **fields: Any) -> None:
        """Start the run (its first step waits for the first decision)."""
        self._handler = self.workflow.run(
            start_event, runtime=self._runtime, run_id="simulated", **fields
        )
        self._ctl.store = self._handler.ctx.store

    async def _crash_and_resume(self) -> None:
        """Drop the run's process (its runtime and every task of it) and resume
        the run from its journal in a new one."""
        await self._runtime.__aexit__(None, None, None)
        self._ctl.after_crash()
        self._runtime = self._new_runtime()
        await self._runtime.__aenter__()
        self._handler = self.workflow.run(runtime=self._runtime, run_id="simulated")
        self._ctl.store = self._handler.ctx.store

    @property
    def handler(self) -> WorkflowHandler:
        if self._handler is None:
            raise SimulationError("start() the simulated run first")
        return self._handler

    @property
    def events(self) -> tuple[Event, ...]:
        """The events published so far."""
        return tuple(self._ctl.events)

    async def decide(
        self,
        choice: int | None = None,
        kinds: Sequence[str] = ("run", "send", "timer"),
        *,
        forced_only: bool = False,
    ) -> int:
        """Wait until nothing can run, then let one thing of ``kinds`` happen:
        option ``choice % n`` if given, else the simulator's own choice.
        With ``forced_only``, only if it is the one thing that can happen.

        :returns: how many options there were to choose from (1 for a crash
            or a cancel, which are no choice); 0, and nothing happens, if the
            run has ended or has no such option.  A caller with a list of
            choices spends one only where this is 2 or more.
        """
        await settle()
        if self._ctl.crashed:
            await self._crash_and_resume()
            return 1
        handler = self.handler
        if handler.is_done():
            return 0
        if self._ctl.cancelling:
            self._ctl.cancelling = False
            self._ctl.trace.append("cancel")
            await handler.cancel_run()
            return 1
        every = self._ctl.options(handler)
        if not every:
            self._check_not_blocked(handler)
        options = [o for o in every if o.kind in kinds]
        if not options or (forced_only and len(options) > 1):
            return len(options)
        if choice is None:
            index = self._chooser.choose(len(options))
        else:
            index = choice % len(options)
            if len(options) > 1:
                self._chooser.made.append(index)
        self._ctl.take(options[index], handler)
        return len(options)

    def _check_not_blocked(self, handler: WorkflowHandler) -> None:
        """Nothing can happen: if a step attempt is still running, it waits
        for something outside the simulation (it would hang, or finish at a
        moment real time chooses)."""
        busy = self._ctl.busy(handler)
        if busy:
            steps = ", ".join(f"{step!r} (worker {worker_id})" for worker_id, step in busy)
            raise SimulationError(
                f"step {steps} of {type(self.workflow).__qualname__} is blocked on something "
                "the simulation does not control: real I/O (a socket, a file, a subprocess), "
                "a thread, or a lock or event shared with code outside the run. Steps under "
                "simulation may sleep and time out (on the simulation's clock) and use "
                "ctx; replace the rest with fakes that answer at once"
            )

    async def send(self, event: Event, at: float | None = None) -> None:
        """Send ``event`` into the run now, as its caller would; or, with
        ``at``, when the simulation's clock gets to ``at`` seconds (a timer
        due then may fire before or after it, as the scheduler chooses), or
        once the run takes it, if it does not then.

        :raises WorkflowRuntimeError: if the run does not take it now.
        :raises ValueError: if ``at`` is in the simulation's past.
        """
        ctl = self._ctl
        if at is not None and at < ctl.clock - _TIE:
            raise ValueError(
                f"send({type(event).__name__}(...), at={at:g}): the simulation's clock is "
                f"already at {ctl.clock:g} s; send at a time not before now (or with at=None)"
            )
        if at is None:
            await settle()
            self.handler.send_event(event)
            return
        later = [i for i, (when, _) in enumerate(ctl.pending) if when is not None and when > at]
        ctl.pending.insert(later[0] if later else len(ctl.pending), (max(at, ctl.clock), event))

    @property
    def now(self) -> float:
        """The simulation's clock, in seconds from the run's start."""
        return self._ctl.clock

    @property
    def deadlines(self) -> tuple[float, ...]:
        """When the timers pending now are due, soonest first: the run's (a
        wait's timeout, a retry, a step's or the run's timeout) and step
        code's (a sleep)."""
        ctl = self._ctl
        due = [deadline for deadline, _, _ in ctl.timers]
        loop = ctl._loop_deadline() if ctl.busy(self.handler) else None
        if loop is not None:
            due.append(loop)
        return tuple(sorted(due))

    async def finish(self) -> Simulation:
        """The run's end (cancelled first, as ``stuck``, if it still waits)."""
        handler = self.handler
        await settle()
        if not handler.is_done():
            self.stuck = True
            await handler.cancel_run()
        outcome = await handler._require_started("finish()").wait_finished()
        error = None if isinstance(outcome, Completed) else handler.exception()
        ctl = self._ctl
        simulation = Simulation(
            self.seed,
            Schedule(without_trailing_zeros(self._chooser.made)),
            outcome,
            tuple(ctl.ticks),
            tuple(ctl.events),
            dict(ctl.calls),
            tuple(ctl.trace),
            self.stuck,
            error,
            dict(ctl.sites.calls),
            tuple(ctl.snapshots),
        )
        note_for_hypothesis(simulation)
        return simulation


async def fault_point(name: str) -> None:
    """A place in your step's code where a simulated fault may happen: call
    ``await fault_point("charged")`` between two side effects.

    Outside a simulation it does nothing (one context variable read).  In a
    simulation the step pauses there (the scheduler may run other steps
    first), and a ``Fault(kind, at=name)`` fires there: an ``InjectedFault``
    raised from this call, a crash of the process (the run resumes from its
    journal; what the step did before the point stays done), or a cancel.
    """
    ctl = _controller.get()
    if ctl is not None:
        await ctl.fault_point(name)


async def simulate(
    workflow: Workflow,
    start_event: StartEvent | None = None,
    *,
    seed: int | None = None,
    schedule: Schedule | None = None,
    faults: Sequence[Fault] = (),
    send: Sequence[Event | tuple[float, Event]] = (),
    max_decisions: int = 10_000,
    **fields: Any,
) -> Simulation:
    """Run ``workflow`` with its real steps under a deterministic scheduler.

    The scheduler's choices come from ``seed`` (random, reproducible) or from
    ``schedule`` (e.g. drawn by hypothesis with ``strategies.schedules()``);
    with neither, the steps go in the order of an ordinary run.  ``send``
    gives events from outside, sent in order whenever the scheduler chooses
    (once the run accepts them); a ``(t, event)`` pair is sent at ``t``
    seconds of the simulation's clock (a timer due then may fire before or
    after it: the scheduler chooses).  Time is virtual: once no step can go on, the
    scheduler chooses between the next outside event and the next timer, the
    run's (a retry, a timeout) or step code's (``anyio.sleep``, ``fail_after``).

    :returns: a ``Simulation``; ``simulation.result`` is the run's result (or
        raises its exception, with the report that replays it).
    :raises SimulationError: if the run takes more than ``max_decisions``
        scheduling decisions; if a step is blocked on something the simulation
        cannot drive (real I/O, a thread, an event from outside the run),
        naming the step; if another simulation runs in this event loop.
    """
    async with Simulator(
        workflow, seed=seed, schedule=schedule, faults=faults, send=send
    ) as simulator:
        simulator.start(start_event, **fields)
        decisions = 0
        while await simulator.decide() > 0:
            decisions += 1
            if decisions > max_decisions:
                raise SimulationError(
                    f"the simulated run of {type(workflow).__qualname__} took more than "
                    f"{max_decisions} scheduling decisions; raise max_decisions= if it is "
                    "that long, or look for a loop"
                )
        return await simulator.finish()
