"""The reducer's state: what a run is, as plain immutable data.

Every class here is a frozen attrs class.  Mappings inside the state are never
mutated after construction: the reducer builds a new mapping for what changed
and shares everything else with the previous state (see ``reducer.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from ._pqueue import PQueue

EMPTY: Mapping[Any, Any] = MappingProxyType({})
"""The empty mapping every fresh state shares (states are never changed in place)."""

RUN_TIMEOUT_TIMER = "run-timeout"
"""Timer id of the workflow-level timeout."""


class RunStatus(enum.Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.NOT_STARTED, RunStatus.RUNNING)


@attrs.frozen
class StepSpec:
    """What the reducer needs to know of one step (nothing callable)."""

    name: str
    accepts: tuple[type, ...]
    """Event types the step accepts; subclasses of them are routed to it too,
    unless ``exact``."""
    num_workers: int = 1
    """How many deliveries of this step may run at once."""
    timeout: float | None = None
    """Seconds one attempt may execute (time spent waiting for an event excluded)."""
    slots: tuple[type, ...] = ()
    """For a join step (one with several event parameters), the type of each
    parameter, in order: its events are given to it a set at a time (rule 7 of
    the reducer).  Empty for a step that takes one event per delivery."""
    exact: bool = False
    """Route to the step only events whose class is exactly one of ``accepts``
    (``@step(accept_event_subclasses=False)``), not their subclasses."""

    def takes(self, event_type: type) -> bool:
        """Whether an event of ``event_type`` is routed to this step."""
        if self.exact:
            return event_type in self.accepts
        return issubclass(event_type, self.accepts)


@attrs.frozen(eq=False)
class RunSpec:
    """The static shape of a workflow, fixed for the life of a run."""

    steps: Mapping[str, StepSpec]
    stop_types: tuple[type, ...]
    """A step returning one of these ends the run successfully."""
    publish_types: tuple[type, ...] = ()
    """A step returning one of these publishes it to the caller's stream."""
    timeout: float | None = None
    """Seconds from start to the run's deadline, or None for no deadline."""
    catchers: Mapping[str, tuple[str, int]] = attrs.field(factory=dict)
    """For a step whose failure is caught: (the catching step, its maximum recoveries)."""
    buffer_types: tuple[type, ...] = ()
    """Events of these types that no step or waiter takes are kept for a later waiter."""
    idle_event: Any = None
    """Published when every unfinished step waits for an event from outside."""
    _route_cache: dict[type, tuple[str, ...]] = attrs.field(factory=dict, init=False, repr=False)
    _idle_lanes: Mapping[str, Lane] | None = attrs.field(default=None, init=False, repr=False)

    def idle_lanes(self) -> Mapping[str, Lane]:
        """An empty lane per step, shared by every run of this spec (states are
        never changed in place, so sharing is safe and saves a dict per run)."""
        if self._idle_lanes is None:
            lanes = MappingProxyType({name: Lane() for name in self.steps})
            object.__setattr__(self, "_idle_lanes", lanes)
        assert self._idle_lanes is not None
        return self._idle_lanes

    def route(self, event_type: type) -> tuple[str, ...]:
        """Names of the steps an event of ``event_type`` is delivered to.

        Memoized: the answer is a function of the spec alone, so caching it does
        not make the reducer any less deterministic.
        """
        try:
            return self._route_cache[event_type]
        except KeyError:
            names = tuple(name for name, spec in self.steps.items() if spec.takes(event_type))
            self._route_cache[event_type] = names
            return names


@attrs.frozen
class Delivery:
    """One event on its way to one step."""

    event_id: int
    event: Any
    attempt: int = 1
    """1 for the first attempt, 2 for the first retry, ..."""
    last_error: Any = None
    """What the previous attempt raised (None on the first attempt)."""
    first_failed_at: float | None = None
    """Tick time of the first failure (the retry policy's elapsed time counted
    from it in data saved before ``first_started_at``)."""
    bound: tuple[Any, ...] | None = None
    """For a join step, the set of events the delivery gives it, one per slot in
    slot order (``event`` is the one that completed the set, and is among them);
    None for any other step."""
    first_started_at: float | None = None
    """Tick time at which the first attempt started, known once it failed
    (``StepFailed.started_at``): the retry policy's elapsed time and
    ``ctx.retry_info().elapsed_seconds`` count from it."""
    last_failed_at: float | None = None
    """Tick time of the latest failure (None on the first attempt)."""


@attrs.frozen
class Resumption:
    """A waiting step whose event came (or whose wait timed out), queued for a
    free worker slot of its step."""

    worker_id: int
    delivery: Delivery
    event: Any
    timed_out: bool = False
    budget: float | None = None
    """What is left of the attempt's step timeout, carried over the wait."""
    sent: int = 0
    """Events the attempt has sent so far (see ``Worker.sent``)."""


@attrs.frozen
class Lane:
    """A step's queue of work waiting for a worker slot, and its busy count."""

    queue: PQueue[Delivery | Resumption] = attrs.field(factory=PQueue)
    running: int = 0


@attrs.frozen
class Worker:
    """A delivery being executed (or, in ``RunState.retries``, waiting to be)."""

    step: str
    delivery: Delivery
    deadline: float | None = None
    """When the attempt's step timeout runs out (None: no step timeout)."""
    sent: int = 0
    """Events this execution of the attempt has sent with ``ctx.send_event`` so
    far (carried over its waits): the position of its next send, which a re-run
    after a resume compares with ``WaitMemo.sent``."""


@attrs.frozen
class Waiter:
    """A step attempt suspended in ``ctx.wait_for_event``; it holds no worker slot."""

    step: str
    delivery: Delivery
    waiter_id: str
    event_types: tuple[type, ...]
    requirements: tuple[tuple[str, Any], ...] = ()
    """(field, value) pairs the awaited event must have."""
    deadline: float | None = None
    """When the wait times out, if it has a timeout."""
    budget: float | None = None
    """What is left of the attempt's step timeout, carried over the wait."""
    sent: int = 0
    """Events the attempt has sent so far (see ``Worker.sent``)."""

    def matches(self, event: Any) -> bool:
        return isinstance(event, self.event_types) and all(
            getattr(event, name, _ABSENT) == value for name, value in self.requirements
        )


_ABSENT = object()


@attrs.frozen
class WaitMemo:
    """What the waits, collects and sends of one delivery have done, so a re-run
    of the step (a retry, or a resumed run) neither asks again, nor waits again
    for what it already got, nor puts its event in a fan-in twice; and a re-run
    of the same attempt after a resume does not send again what it sent."""

    published: Mapping[str, Any] = attrs.field(factory=dict)
    """The ``waiter_event`` published for each waiter id (asked again only if it
    changed)."""
    answers: Mapping[str, Any] = attrs.field(factory=dict)
    """The event each completed wait returned, by waiter id."""
    deadlines: Mapping[str, float] = attrs.field(factory=dict)
    """Deadlines of waits that a crash cut short, by waiter id: the same wait of
    the attempt's re-run keeps its deadline (a recovered run only)."""
    collected: Mapping[str, tuple[tuple[Any, tuple[Any, ...] | None], ...]] = attrs.field(
        factory=dict
    )
    """The events this delivery's attempts put in each buffer (by buffer id),
    with what ``collect_events`` returned: None (the event waits in the buffer)
    or the events it completed the set with."""
    sent: tuple[int, int] | None = None
    """(attempt, count): how many events that attempt had sent when a resume
    cut it short; its re-run's first ``count`` sends are not delivered again.
    Another attempt (a retry) sends anew."""

    def asked(self, waiter_id: str, question: Any) -> WaitMemo:
        return attrs.evolve(self, published={**self.published, waiter_id: question})

    def answered(self, waiter_id: str, event: Any) -> WaitMemo:
        return attrs.evolve(self, answers={**self.answers, waiter_id: event})

    def cut_short(self, waiter_id: str, deadline: float) -> WaitMemo:
        return attrs.evolve(self, deadlines={**self.deadlines, waiter_id: deadline})

    def resumed(self, waiter_id: str) -> WaitMemo:
        deadlines = {k: v for k, v in self.deadlines.items() if k != waiter_id}
        return attrs.evolve(self, deadlines=deadlines)

    def collected_before(self, buffer_id: str, event: Any) -> tuple[bool, tuple[Any, ...] | None]:
        """Whether ``event`` was put in ``buffer_id`` already, and what that returned."""
        for earlier, result in self.collected.get(buffer_id, ()):
            if earlier == event:
                return True, result
        return False, None

    def collects(self, buffer_id: str, event: Any, result: tuple[Any, ...] | None) -> WaitMemo:
        entries = (*self.collected.get(buffer_id, ()), (event, result))
        return attrs.evolve(self, collected={**self.collected, buffer_id: entries})

    def sent_before(self, attempt: int) -> int:
        """How many events an earlier execution of ``attempt`` sent."""
        sent = self.sent
        return sent[1] if sent is not None and sent[0] == attempt else 0

    def sends(self, attempt: int, count: int) -> WaitMemo:
        """This memo after an execution of ``attempt`` that sent ``count`` events
        was cut short (an earlier execution may have sent more)."""
        if count <= self.sent_before(attempt):
            return self
        return attrs.evolve(self, sent=(attempt, count))


@attrs.frozen
class CollectBuffer:
    """Events a step has put aside with ``collect_events``, oldest first when read."""

    cells: tuple[Any, Any] | None = None
    """Cons list of events, newest first, so that adding one is O(1)."""
    total: int = 0

    def add(self, event: Any) -> CollectBuffer:
        return CollectBuffer((event, self.cells), self.total + 1)

    def items(self) -> list[Any]:
        """The buffered events, oldest first."""
        out: list[Any] = []
        cells = self.cells
        while cells is not None:
            head, cells = cells
            out.append(head)
        out.reverse()
        return out

    @classmethod
    def of(cls, events: list[Any]) -> CollectBuffer:
        buf = cls()
        for event in events:
            buf = buf.add(event)
        return buf


@attrs.frozen
class JoinBuffer:
    """Events routed to a join step that wait for the rest of their set."""

    events: CollectBuffer = CollectBuffer()
    """The held events, oldest first when read."""
    fits: tuple[int, ...] = ()
    """How many held events fit each slot (derived from ``events``): a set
    cannot be complete while a slot has fewer candidates than there are slots of
    its type, so an event that cannot complete one costs O(slots), however many
    events are held."""

    @classmethod
    def of(cls, events: list[Any], slots: tuple[type, ...]) -> JoinBuffer:
        fits = tuple(sum(isinstance(ev, t) for ev in events) for t in slots)
        return cls(CollectBuffer.of(events), fits)


# Outcomes: how a run ended, each with the status it leaves the run in.


@attrs.frozen
class Completed:
    status: ClassVar[RunStatus] = RunStatus.COMPLETED
    stop_event: Any


@attrs.frozen
class Failed:
    status: ClassVar[RunStatus] = RunStatus.FAILED
    step: str
    error: Any
    """The exception the step raised (opaque to the reducer)."""
    attempts: int


@attrs.frozen
class Cancelled:
    status: ClassVar[RunStatus] = RunStatus.CANCELLED


@attrs.frozen
class TimedOut:
    status: ClassVar[RunStatus] = RunStatus.TIMED_OUT
    timeout: float
    active_steps: tuple[str, ...]


@attrs.frozen
class Broken:
    """The run broke a rule no validation could catch earlier (e.g. a step
    returned an event type that no step accepts)."""

    status: ClassVar[RunStatus] = RunStatus.FAILED
    step: str | None
    message: str
    error: Any = None
    """The exception behind it, when there is one (e.g. a journal that cannot
    be read back): the caller gets that exception."""


Outcome = Completed | Failed | Cancelled | TimedOut | Broken


@attrs.frozen
class RunState:
    """Everything the reducer knows about one run."""

    spec: RunSpec
    status: RunStatus = RunStatus.NOT_STARTED
    lanes: Mapping[str, Lane] = EMPTY
    workers: Mapping[int, Worker] = EMPTY
    """Deliveries being executed, by worker id."""
    waiting: Mapping[int, Waiter] = EMPTY
    """Step attempts suspended in ``wait_for_event``, by worker id, oldest first."""
    memos: Mapping[tuple[str, int], WaitMemo] = EMPTY
    """Wait memos by (step, event id) of the delivery, until it finishes."""
    unclaimed: tuple[tuple[Any, str | None], ...] = ()
    """Events sent in that no step and no waiter took yet, with the step they were
    sent to, if any (see RunSpec.buffer_types)."""
    recoveries: Mapping[str, int] = EMPTY
    """How many failures each catching step has been handed."""
    idle: bool = False
    """Whether every unfinished step is waiting for an event (idle was published)."""
    retries: Mapping[str, Worker] = EMPTY
    """Failed deliveries waiting for their retry timer, by timer id (the
    worker's ``deadline`` is when the retry is due)."""
    collections: Mapping[tuple[str, str], CollectBuffer] = EMPTY
    """``collect_events`` buffers, by (step name, buffer id)."""
    next_event_id: int = 0
    next_worker_id: int = 0
    deadline: float | None = None
    outcome: Outcome | None = None
    joins: Mapping[str, JoinBuffer] = EMPTY
    """Events held for join steps until their sets are complete, by step name."""

    @classmethod
    def initial(cls, spec: RunSpec) -> RunState:
        return cls(spec=spec, lanes=spec.idle_lanes())

    def active_steps(self) -> tuple[str, ...]:
        """Names of the steps with unfinished work (executing, waiting for a retry
        or for an event), sorted."""
        steps = {w.step for w in self.workers.values()}
        steps.update(w.step for w in self.retries.values())
        steps.update(w.step for w in self.waiting.values())
        return tuple(sorted(steps))
