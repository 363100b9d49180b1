"""The reducer's state: what a run is, as plain immutable data.

Every class here is a frozen attrs class.  Mappings inside the state are never
mutated after construction: the reducer builds a new mapping for what changed
and shares everything else with the previous state (see ``reducer.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ._pqueue import PQueue

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
    """Event types the step accepts; subclasses of them are routed to it too."""
    num_workers: int = 1
    """How many deliveries of this step may run at once."""


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
    _route_cache: dict[type, tuple[str, ...]] = attrs.field(factory=dict, init=False, repr=False)

    def route(self, event_type: type) -> tuple[str, ...]:
        """Names of the steps an event of ``event_type`` is delivered to.

        Memoized: the answer is a function of the spec alone, so caching it does
        not make the reducer any less deterministic.
        """
        try:
            return self._route_cache[event_type]
        except KeyError:
            names = tuple(
                name for name, spec in self.steps.items() if issubclass(event_type, spec.accepts)
            )
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
    """Tick time of the first failure, for the retry policy's elapsed time."""


@attrs.frozen
class Lane:
    """A step's queue of deliveries waiting for a worker, and its busy count."""

    queue: PQueue[Delivery] = attrs.field(factory=PQueue)
    running: int = 0


@attrs.frozen
class Worker:
    """A delivery being executed (or, in ``RunState.retries``, waiting to be)."""

    step: str
    delivery: Delivery


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


# Outcomes: how a run ended.


@attrs.frozen
class Completed:
    stop_event: Any


@attrs.frozen
class Failed:
    step: str
    error: Any
    """The exception the step raised (opaque to the reducer)."""
    attempts: int


@attrs.frozen
class Cancelled:
    pass


@attrs.frozen
class TimedOut:
    timeout: float
    active_steps: tuple[str, ...]


@attrs.frozen
class Broken:
    """The run broke a rule no validation could catch earlier (e.g. a step
    returned an event type that no step accepts)."""

    step: str | None
    message: str


Outcome = Completed | Failed | Cancelled | TimedOut | Broken


@attrs.frozen
class RunState:
    """Everything the reducer knows about one run."""

    spec: RunSpec
    status: RunStatus = RunStatus.NOT_STARTED
    lanes: Mapping[str, Lane] = attrs.field(factory=dict)
    workers: Mapping[int, Worker] = attrs.field(factory=dict)
    """Deliveries being executed, by worker id."""
    retries: Mapping[str, Worker] = attrs.field(factory=dict)
    """Failed deliveries waiting for their retry timer, by timer id."""
    collections: Mapping[tuple[str, str], CollectBuffer] = attrs.field(factory=dict)
    """``collect_events`` buffers, by (step name, buffer id)."""
    next_event_id: int = 0
    next_worker_id: int = 0
    deadline: float | None = None
    outcome: Outcome | None = None

    @classmethod
    def initial(cls, spec: RunSpec) -> RunState:
        return cls(spec=spec, lanes={name: Lane() for name in spec.steps})

    def active_steps(self) -> tuple[str, ...]:
        """Names of the steps with unfinished work (executing, or waiting for a
        retry), sorted."""
        return tuple(sorted({w.step for w in (*self.workers.values(), *self.retries.values())}))
