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

This module holds the ``Simulator`` (one run, one decision at a time) and
``simulate`` (its loop); the rules of a decision are the ``Controller``'s
(``_controller``), and the runtime that hands the run's hooks to it is
``_simulated_runtime``'s.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..durable import DurableRuntime, MemoryStore
from ..errors import AnyflowError
from ..runtime.clock import install_virtual_clock
from ..runtime.vocabulary import Completed
from ._controller import TIE, Chooser, Controller
from ._settle import settle
from ._simulated_runtime import SimulatedRuntime
from ._simulation import (
    Schedule,
    Simulation,
    note_for_hypothesis,
    without_trailing_zeros,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..events import Event, StartEvent
    from ..handler import WorkflowHandler
    from ..runtime import Runtime
    from ..workflow import Workflow
    from ._faults import Fault

__all__ = [
    "Schedule",
    "Simulation",
    "SimulationError",
    "Simulator",
    "fault_point",
    "simulate",
]


_simulating: ContextVar[bool] = ContextVar("anyflow_simulating", default=False)
_controller: ContextVar[Controller | None] = ContextVar("anyflow_simulator", default=None)


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
        self._chooser = Chooser(seed, schedule)
        self._ctl = Controller(workflow, self._chooser, faults, send)
        self._store = MemoryStore() if any(f.kind == "crash" for f in faults) else None
        self._runtime = self._new_runtime()
        self._handler: WorkflowHandler | None = None
        self.stuck = False

    def _new_runtime(self) -> Runtime:
        runtime = SimulatedRuntime(self._ctl)
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
        if at is not None and at < ctl.clock - TIE:
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
        loop = ctl.loop_deadline() if ctl.busy(self.handler) else None
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
        outcome = await handler.wait_finished()
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
