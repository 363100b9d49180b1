"""Hypothesis strategies for simulated runs of your workflows.

    from hypothesis import given
    from anyflow.testing import simulate
    from anyflow.testing.strategies import faults, schedules

    @given(schedule=schedules(), faults=faults(max=2))
    async def test_the_total_never_changes(schedule, faults): ...

A schedule is a list of choices that shrinks toward "the steps in the order
they were started", so a failing example shrinks to the fewest reorderings
that still break your invariant.
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

from ._simulate import Fault, Schedule, SimulationError, Simulator

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
) -> st.SearchStrategy[tuple[Fault, ...]]:
    """Up to ``max`` faults, each making one step attempt fail: of one of
    ``steps`` (any step if None), the ``nth`` attempt started (0 to
    ``max_nth``), failing as one of ``kinds`` (see ``Fault``).  With
    ``points``, names of ``fault_point(name)`` calls in your steps, a fault
    may also happen at the ``nth`` time one of them is reached, as one of
    ``kinds`` other than ``"timeout"``."""
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
    fires the next timer.  Then ``TestMyMachine = MyMachine.TestCase``.

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
            task_status.started(simulator)
            await self._closing.wait()

    def teardown(self) -> None:
        try:
            self._portal.call(self._closing.set)
            self._host.result()
        finally:
            self._portal_cm.__exit__(None, None, None)

    # For rules and invariants.

    def send(self, event: Event) -> None:
        """Send ``event`` into the run, as its caller would.

        :raises SimulationError: if the run has ended (its exception is the cause).
        """
        handler = self._simulator.handler
        if handler.is_done():
            raise SimulationError(
                f"the run has ended, so it takes no {type(event).__name__}; its end: "
                f"{handler.exception()!r}"
            ) from handler.exception()
        self._portal.call(self._simulator.send, event)

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
        """The run's steps go on until none can, in an order drawn from ``choices``."""
        decide = self._simulator.decide
        for choice in choices:
            if not self._portal.call(decide, choice, ("run",)):
                return
        for _ in range(10_000):
            if not self._portal.call(decide, 0, ("run",)):
                return
        raise SimulationError("the run's steps made 10,000 moves without stopping")

    @rule()
    def time_passes(self) -> None:
        """The next timer fires (a retry, a wait's timeout, ...), if there is one."""
        self._portal.call(self._simulator.decide, 0, ("timer",))


def around(*deadlines: float, within: float = 1.0) -> st.SearchStrategy[float]:
    """Times near ``deadlines`` (seconds of a simulation's clock), for outside
    events sent at a time (``simulate(..., send=[(t, event)])``): each
    deadline itself, ``within`` seconds before and after it, and any time in
    between.  Hypothesis shrinks toward the first deadline, exactly."""
    if not deadlines:
        raise ValueError("around() needs at least one deadline, e.g. around(30)")
    exact = [t for d in deadlines for t in (d, d - within, d + within) if t >= 0]
    near = [st.floats(max(0.0, d - within), d + within) for d in deadlines]
    return st.one_of(st.sampled_from(exact), *near)
