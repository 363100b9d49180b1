"""The simulation's controller: what the simulated run's adapter and the
scheduling loop share.

The run's tasks call in (``step_point``, ``fault_point``, a resource call,
``sleep_until``, ``committed``) and park there; the scheduling loop
(``Simulator.decide``) asks for the ``options`` (a paused step to let go, an
outside event to send, a timer to fire) and ``take``s one. Kept apart from
the ``Simulator`` so the rules of a decision (the ordinary run's order as
the first option, the race of timers and timed events, where faults fire)
read in one place, without the context management around a run.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import random
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from ..errors import AnyflowError, StepTimeoutError
from ..events import Event
from ._faults import Fault, FaultSites, Halted, InjectedFault

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..context import StateStore
    from ..handler import WorkflowHandler
    from ..runtime.clock import VirtualClock
    from ..runtime.vocabulary import Tick
    from ..workflow import Workflow
    from ._simulation import Schedule

__all__ = ["TIE", "Chooser", "Controller", "Option"]

TIE = 1e-6
"""Timers this close (in seconds) are due at the same time."""


@attrs.frozen
class Option:
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


class Chooser:
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


class Controller:
    """What the simulated run's adapter and the scheduling loop share."""

    def __init__(
        self,
        workflow: Workflow,
        chooser: Chooser,
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
        await self._park(task, _Paused(worker_id, step, point, self._next_pause(task, worker_id)))
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
        await self._park(task, _Paused(worker_id, step, point, place))

    async def _park(self, task: int, paused: _Paused) -> None:
        """Hold ``task`` at its pause until a decision lets it go on."""
        self.paused[task] = paused
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

    def attempt_ended(self, task: int) -> None:
        """The step attempt that ran in ``task`` is over: the task's id may
        name another task once it ends (the caller's, reading the store),
        which is no step's."""
        self.workers.pop(task, None)
        self._line.pop(task, None)

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
        state = handler.ctx.run_state()
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

    def options(self, handler: WorkflowHandler) -> list[Option]:
        options = [
            Option("run", f"{p.step}#{p.worker_id} from {p.point}", task)
            for task, p in sorted(self.paused.items(), key=lambda item: item[1].seq)
        ]
        timed: float | None = None
        due_now = False
        if self.pending:
            when, event = self.pending[0]
            if when is not None and when > self.clock + TIE:
                timed = when  # sent when the clock gets there
            elif self._sendable(event, handler):
                options.append(Option("send", f"send {type(event).__name__}"))
                due_now = when is not None
        if any(option.kind == "run" for option in options):
            return options  # steps take no time: the clock waits for them
        # Outside events and the clock race.  The run's own timers, the
        # timers of step code (a sleep, a fail_after) and an outside event
        # due at the same time are options each, so any may come first.
        # An event whose time has come goes in before the clock moves on.
        engine = self.timers[0][0] if self.timers else None
        loop = self.loop_deadline() if self.busy(handler) else None
        due = [t for t in (engine, loop, timed) if t is not None]
        if due_now:
            due.append(self.clock)
        if engine is not None and engine <= min(due) + TIE:
            options.append(Option("timer", f"time {engine:g}s", "run"))
        if loop is not None and loop <= min(due) + TIE:
            options.append(Option("timer", f"time {loop:g}s in step code", "steps"))
        if timed is not None and timed <= min(due) + TIE:
            name = type(self.pending[0][1]).__name__
            options.append(Option("timer", f"time {timed:g}s: send {name}", "send"))
        return options

    def _sendable(self, event: Event, handler: WorkflowHandler) -> bool:
        try:
            handler.check_sendable(event)
        except AnyflowError:
            return False  # not accepted yet: offered again later
        return True

    def loop_deadline(self) -> float | None:
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

    def take(self, option: Option, handler: WorkflowHandler) -> None:
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
