"""Hypothesis strategies for simulated runs of your workflows.

    from hypothesis import given
    from anyflow.testing import simulate
    from anyflow.testing.strategies import faults, schedules

    @given(schedule=schedules(), faults=faults(max=2))
    async def test_the_total_never_changes(schedule, faults): ...

A schedule is a list of choices that shrinks toward "the order an ordinary
run takes", so a failing example shrinks to the fewest reorderings that
still break your invariant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.abc
from anyio.from_thread import start_blocking_portal

try:
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule
except ImportError as exc:
    raise ModuleNotFoundError(
        f"anyflow.testing.strategies needs hypothesis ({exc.name} is missing): "
        "pip install 'anyflow[testing]'",
        name=exc.name,
    ) from exc

from ._faults import Fault
from ._simulate import SimulationError, Simulator
from ._simulation import Schedule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..events import Event, StartEvent
    from ..workflow import Workflow

__all__ = ["WorkflowStateMachine", "around", "faults", "schedules"]


def schedules(*, max_choices: int = 200) -> st.SearchStrategy[Schedule]:
    """Schedules for ``simulate(..., schedule=...)``: up to ``max_choices``
    decisions (later ones take the first option)."""
    return st.lists(st.integers(0, 255), max_size=max_choices).map(
        lambda choices: Schedule(tuple(choices))
    )


def faults(
    *,
    max: int = 2,
    steps: Sequence[str] | None = None,
    kinds: Sequence[str] = ("error", "timeout"),  # also "cancel", "crash"
    max_nth: int = 8,
    points: Sequence[str] = (),
    calls: Sequence[str] = (),
) -> st.SearchStrategy[tuple[Fault, ...]]:
    """Up to ``max`` faults, each making one step attempt fail: of one of
    ``steps`` (any step if None), the ``nth`` attempt started (0 to
    ``max_nth``), failing as one of ``kinds`` (see ``Fault``).  With
    ``points``, names of ``fault_point(name)`` calls in your steps, a fault
    may also happen at the ``nth`` time one of them is reached, as one of
    ``kinds`` other than ``"timeout"``.  With ``calls``, calls to your
    steps' resources (``"bank.charge"``: the parameter and the method; see
    ``Simulation.resource_calls``), a fault may also happen at the ``nth``
    such call, as one of ``kinds``."""
    step = st.none() if steps is None else st.sampled_from(list(steps))
    nth = st.integers(0, max_nth)
    fault: st.SearchStrategy[Fault] = st.builds(
        Fault, kind=st.sampled_from(list(kinds)), step=step, nth=nth
    )
    point_kinds = [kind for kind in kinds if kind != "timeout"]
    if points and point_kinds:
        at_point = st.builds(
            Fault,
            kind=st.sampled_from(point_kinds),
            step=step,
            nth=nth,
            at=st.sampled_from(list(points)),
        )
        fault = fault | at_point
    if calls and kinds:
        at_call = st.builds(
            Fault,
            kind=st.sampled_from(list(kinds)),
            step=step,
            nth=nth,
            call=st.sampled_from(list(calls)),
        )
        fault = fault | at_call
    return st.lists(fault, max_size=max).map(tuple)


class WorkflowStateMachine(RuleBasedStateMachine):
    """A hypothesis state machine around one simulated run of a workflow that
    takes outside input.

    Subclass it; give ``make_workflow()`` (and ``start_event()`` if the start
    event has fields); write ``@rule`` methods that ``self.send(...)`` the
    run's outside events, and ``@invariant`` methods that look at
    ``self.events``, ``self.store_get(...)``, ``self.done`` and
    ``self.result``.  Two rules come with it: ``steps_go_on`` lets the run's
    steps go on, in an order hypothesis draws, until none can; ``time_passes``
    fires the next timer (or sends the next event sent at a time).  Then
    ``TestMyMachine = MyMachine.TestCase``.  A rule may send an event at a
    time of the simulation's clock (``self.send(event, at=t)``), drawn around
    the run's deadlines (``data.draw(self.times())``).

    The run lives in an event loop of its own (``backend``: ``"asyncio"`` or
    ``"trio"``), in a thread, for the whole of one example.
    """

    backend: ClassVar[str] = "asyncio"

    def make_workflow(self) -> Workflow:
        raise NotImplementedError("return the workflow to simulate from make_workflow()")

    def start_event(self) -> StartEvent | None:
        return None

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = start_blocking_portal(self.backend)
        self._portal = self._portal_cm.__enter__()
        self._closing: anyio.Event = self._portal.call(anyio.Event)
        self._host, simulator = self._portal.start_task(self._hold)
        self._simulator: Simulator = simulator

    async def _hold(self, *, task_status: anyio.abc.TaskStatus[Simulator]) -> None:
        async with Simulator(self.make_workflow()) as simulator:
            simulator.start(self.start_event())
            # The run starts: its steps go on while one alone can (as in an
            # ordinary run), so the first rule finds it at its first choice
            # or waiting for the outside (its waits' deadlines set).
            while await simulator.decide(0, ("run",), forced_only=True) == 1:
                pass
            task_status.started(simulator)
            await self._closing.wait()

    def teardown(self) -> None:
        try:
            self._portal.call(self._closing.set)
            self._host.result()
        finally:
            self._portal_cm.__exit__(None, None, None)

    # For rules and invariants.

    def send(self, event: Event, at: float | None = None) -> None:
        """Send ``event`` into the run, as its caller would: now, or at ``at``
        seconds of the simulation's clock (``self.now`` or later).  An event
        sent at a time goes in once time gets there (``time_passes``): if a
        timer is due at the same moment, the timer may fire first or the
        event go in first, as hypothesis draws.

        :raises SimulationError: if the run has ended (its exception is the cause).
        :raises ValueError: if ``at`` is before ``self.now``.
        """
        handler = self._simulator.handler
        if handler.is_done():
            raise SimulationError(
                f"the run has ended, so it takes no {type(event).__name__}; its end: "
                f"{handler.exception()!r}"
            ) from handler.exception()
        self._portal.call(self._simulator.send, event, at)

    @property
    def now(self) -> float:
        """The simulation's clock, in seconds from the run's start."""
        return self._simulator.now

    @property
    def deadlines(self) -> tuple[float, ...]:
        """When the run's pending timers are due (a wait's timeout, a retry,
        the run's timeout), soonest first."""
        return self._portal.call(_deadlines, self._simulator)

    def times(self, within: float = 1.0) -> st.SearchStrategy[float]:
        """Times to ``send(event, at=...)`` an event at, drawn with
        ``st.data()``: around each pending deadline (the deadline itself,
        ``within`` seconds before and after it, and any time in between; see
        ``around``), or now; none before now.  Shrinks toward the first
        deadline, exactly."""
        now = self.now
        deadlines = [d for d in self.deadlines if d >= now]
        if not deadlines:
            return st.just(now)
        return around(*deadlines, within=within).map(lambda t: max(t, now)) | st.just(now)

    @property
    def events(self) -> tuple[Event, ...]:
        return self._simulator.events

    @property
    def done(self) -> bool:
        return self._simulator.handler.is_done()

    @property
    def result(self) -> Any:
        """The run's result (raising its exception) once it is done."""
        return self._simulator.handler.result()

    def store_get(self, path: str, default: Any = None) -> Any:
        """A value of the run's state store."""
        return self._portal.call(self._simulator.handler.ctx.store.get, path, default)

    # The rules that come with the machine.

    @rule(choices=st.lists(st.integers(0, 255), max_size=8))
    def steps_go_on(self, choices: list[int]) -> None:
        """The run's steps go on until none can, in an order drawn from
        ``choices`` (with the events sent at a time that has come).  A choice
        is spent only where two things or more can happen: where one step
        alone can go on, it does."""
        decide = self._simulator.decide
        left = list(choices)
        for _ in range(10_000):
            options = self._portal.call(decide, left[0] if left else 0, ("run", "send"))
            if not options:
                return
            if options > 1 and left:
                left.pop(0)
        raise SimulationError("the run's steps made 10,000 moves without stopping")

    @rule(choice=st.integers(0, 255))
    def time_passes(self, choice: int) -> None:
        """Time jumps to the next timer, which fires (a retry, a wait's
        timeout, ...), or to the next event sent at a time, which goes in;
        when several are due at once, ``choice`` says which comes first."""
        self._portal.call(self._simulator.decide, choice, ("timer",))


async def _deadlines(simulator: Simulator) -> tuple[float, ...]:
    return simulator.deadlines


def around(*deadlines: float, within: float = 1.0) -> st.SearchStrategy[float]:
    """Times near ``deadlines`` (seconds of a simulation's clock), for outside
    events sent at a time (``simulate(..., send=[(t, event)])``): each
    deadline itself, ``within`` seconds before and after it, and any time in
    between.  Hypothesis shrinks toward the first deadline, exactly."""
    if not deadlines:
        raise ValueError("around() needs at least one deadline, e.g. around(30)")
    edges = [t for d in deadlines for t in (d - within, d + within) if t >= 0]
    near = [st.floats(max(0.0, d - within), d + within) for d in deadlines]
    return st.one_of(st.sampled_from(deadlines), st.sampled_from(edges), *near)
