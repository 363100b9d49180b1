"""What one recorded run did, laid over its workflow's graph.

Theory of operation
-------------------

A run leaves its whole history in its ticks (a durable store's journal, or
``Simulation.ticks`` in tests), and the reducer is pure: folding the ticks
through it again gives, tick by tick, the commands the run gave.  Those say
everything a drawing needs, without the run's code being executed:

* a ``StartWorker`` command is a step attempt starting (the first for its step
  gives the step's place in the order of first execution);
* a ``StepCompleted`` or ``StepFailed`` tick ends the attempt of its worker, so
  the step is the one the latest ``StartWorker`` of that worker named;
* the ``Finish`` command carries the outcome: which step failed and why, or the
  steps still running when the run timed out.

Handlers keep no ticks (a run that is not durable leaves no record to read), so
a drawing is made from a journal: ``recorded_run_graph`` reads one from a store,
for a run id or for the handler of a ``DurableRuntime`` run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..runtime.vocabulary import (
    Broken,
    Cancelled,
    Completed,
    EventSent,
    Failed,
    Finish,
    RunStarted,
    RunState,
    StartWorker,
    StepCompleted,
    StepFailed,
    TickRejected,
    TimedOut,
    reduce,
    run_spec,
)
from ._graph import EventNode, WorkflowGraph, workflow_graph

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..durable import Store
    from ..handler import WorkflowHandler
    from ..runtime.vocabulary import Outcome, Tick
    from ..workflow import Workflow

__all__ = [
    "RunGraph",
    "StepActivity",
    "recorded_run_graph",
    "run_graph",
    "run_summary",
    "step_summary",
]


@attrs.frozen
class StepActivity:
    """What one step did in the run."""

    started: int = 0
    """Attempts started, retries included (a run resumed after a crash starts
    again the attempts the crash cut short: they count twice)."""
    succeeded: int = 0
    """Attempts that returned."""
    failed: int = 0
    """Attempts that raised (or ran out of time), whether retried or not."""
    order: int | None = None
    """1 for the step that ran first, 2 for the next one to start, ...; None
    for a step that never ran."""
    last_error: str | None = None
    """``Type: message`` of the latest failed attempt."""

    @property
    def ran(self) -> bool:
        return self.started > 0


@attrs.frozen
class RunGraph:
    """A workflow's graph and what one run of it did, step by step.

    Draw it with ``mermaid(run)`` or ``anyflow draw TARGET --run RUN_ID``.
    """

    graph: WorkflowGraph
    steps: Mapping[str, StepActivity]
    """Every step of the graph, in the graph's order."""
    events: Mapping[str, int]
    """How many events of each event node's exact class entered the run (the
    start event, events steps returned, events sent in), by node id."""
    status: str
    """``"running"`` (the record ends before the run did), ``"completed"``,
    ``"failed"``, ``"cancelled"`` or ``"timed_out"``: a store's statuses."""
    failed_step: str | None = None
    """The step whose failure ended the run."""
    error: str | None = None
    """Why the run ended if it did not complete: the failing step's
    ``Type: message``, or the timeout."""
    active: tuple[str, ...] = ()
    """Steps with work in hand when the record ends: where a timed-out,
    cancelled or unfinished run stopped."""
    run_id: str | None = None
    ticks: int = 0
    """How many ticks the run recorded."""
    duration: float | None = None
    """Seconds from the first tick to the last."""

    @property
    def name(self) -> str:
        return self.graph.name

    def order(self) -> list[str]:
        """The steps that ran, in the order each first started."""
        ran = [(a.order, name) for name, a in self.steps.items() if a.order is not None]
        return [name for _, name in sorted(ran)]


def _error_text(error: Any) -> str:
    """``Type: message``, for a live exception or one read back from a journal."""
    kind = getattr(error, "type_name", None) or type(error).__name__
    return f"{kind.rpartition(':')[2]}: {error}"


def run_graph(
    workflow: Workflow | type[Workflow], ticks: Iterable[Tick], *, run_id: str | None = None
) -> RunGraph:
    """What the run that recorded ``ticks`` did, over ``workflow``'s graph.

    The ticks are folded through the workflow's state machine (no step runs),
    so they must be a run of this workflow, from its first tick.

    :raises ValueError: at the first tick the workflow's run could not have
        taken (a run of another workflow, or of an earlier version of it).
    """
    from ..workflow import Workflow

    wf = workflow if isinstance(workflow, Workflow) else workflow()
    graph = workflow_graph(wf)
    classes = {n.event_class: n.id for n in graph.nodes if isinstance(n, EventNode)}
    steps = {name: StepActivity() for name in wf.steps()}
    events = dict.fromkeys(classes.values(), 0)
    worker_step: dict[int, str] = {}
    first_started = 0
    outcome: Outcome | None = None
    state = RunState.initial(run_spec(wf))
    count = 0
    first_time: float | None = None
    last_time: float | None = None

    def saw(event: Any) -> None:
        node_id = classes.get(type(event))
        if node_id is not None:
            events[node_id] += 1

    for index, tick in enumerate(ticks):
        try:
            state, commands = reduce(state, tick)
        except TickRejected as exc:
            raise ValueError(
                f"tick {index} ({type(tick).__name__}) does not fit a run of "
                f"{type(wf).__name__}: {exc}"
            ) from exc
        count += 1
        first_time = tick.now if first_time is None else first_time
        last_time = tick.now
        if isinstance(tick, RunStarted):
            saw(tick.start_event)
        elif isinstance(tick, EventSent):
            saw(tick.event)
        elif isinstance(tick, StepCompleted | StepFailed):
            name = worker_step.get(tick.worker_id)
            if name is None:  # the reducer drops it as stale; here it is a misfit
                raise ValueError(
                    f"tick {index} ({type(tick).__name__}) does not fit a run of "
                    f"{type(wf).__name__}: no step was started as worker {tick.worker_id} "
                    "(the recorded events reach none of its steps: the ticks are of another "
                    "workflow, or of its module imported under another name)"
                )
            if name in steps:
                activity = steps[name]
                if isinstance(tick, StepCompleted):
                    activity = attrs.evolve(activity, succeeded=activity.succeeded + 1)
                    if tick.output is not None:
                        saw(tick.output)
                else:
                    activity = attrs.evolve(
                        activity, failed=activity.failed + 1, last_error=_error_text(tick.error)
                    )
                steps[name] = activity
        for command in commands:
            if isinstance(command, StartWorker):
                worker_step[command.worker_id] = command.step
                activity = steps.get(command.step, StepActivity())
                if activity.order is None:
                    first_started += 1
                    activity = attrs.evolve(activity, order=first_started)
                steps[command.step] = attrs.evolve(activity, started=activity.started + 1)
            elif isinstance(command, Finish):
                outcome = command.outcome

    status, failed_step, error, active = _ending(outcome, state)
    return RunGraph(
        graph=graph,
        steps=steps,
        events=events,
        status=status,
        failed_step=failed_step,
        error=error,
        active=active,
        run_id=run_id,
        ticks=count,
        duration=None if first_time is None or last_time is None else last_time - first_time,
    )


def _ending(
    outcome: Outcome | None, state: RunState
) -> tuple[str, str | None, str | None, tuple[str, ...]]:
    """``(status, failed step, error, active steps)`` of a run that ended so."""
    if outcome is None:
        busy = {w.step for w in state.workers.values()} | {w.step for w in state.waiting.values()}
        return "running", None, None, tuple(sorted(busy))
    match outcome:
        case Completed():
            return "completed", None, None, ()
        case Failed(step=step, error=error, attempts=attempts):
            return "failed", step, f"{_error_text(error)} after {attempts} attempt(s)", ()
        case Broken(step=step, message=message):
            return "failed", step, message, ()
        case TimedOut(timeout=timeout, active_steps=active):
            running = ", ".join(active) or "none"
            error = f"timed out after {timeout:g}s (steps still running: {running})"
            return "timed_out", None, error, tuple(active)
        case Cancelled():
            return "cancelled", None, "cancelled", ()


async def recorded_run_graph(
    store: Store, run: str | WorkflowHandler, workflow: Workflow | type[Workflow]
) -> RunGraph:
    """What a durable run did, read from its journal in ``store`` (without
    taking the run's lease: a live run can be drawn too).

    ``run`` is the run id, or the handler of a run of a ``DurableRuntime``
    over ``store`` (handlers keep no ticks of their own: the journal is the
    record).

    :raises LookupError: if the store has no such run.
    :raises ValueError: if the run is of another workflow, or its ticks do not
        fit ``workflow`` (it changed since the run).
    :raises JournalCorruptError: naming a record that cannot be read.
    """
    from ..durable.journal import decode_ticks

    run_id = run if isinstance(run, str) else run.run_id
    cls = workflow if isinstance(workflow, type) else type(workflow)
    record = await store.get_run(run_id)
    if record is None:
        raise LookupError(f"the store has no run {run_id!r}")
    if record.workflow.rpartition(":")[2] != cls.__qualname__:
        raise ValueError(
            f"run {run_id!r} is a run of {record.workflow}, not of {cls.__qualname__}: "
            "read it with the workflow that recorded it"
        )
    return run_graph(workflow, decode_ticks(run_id, await store.read_ticks(run_id)), run_id=run_id)


RUN_STYLES = {
    "failed": "fill:#ffebee,stroke:#c62828,stroke-width:3px,color:#b71c1c",
    "active": "fill:#fff8e1,stroke:#f9a825,stroke-width:3px",
    "notrun": "fill:#fafafa,stroke:#bdbdbd,color:#9e9e9e,stroke-dasharray:4 3",
}
"""Mermaid classes of a run's drawing, over the graph's own."""


def step_summary(activity: StepActivity) -> str:
    """How a step's attempts went, in a few words (shared by the drawings)."""
    if not activity.ran:
        return "not run"
    parts = [f"{activity.succeeded} ok"]
    if activity.failed:
        parts.append(f"{activity.failed} failed")
    attempts = "1 attempt" if activity.started == 1 else f"{activity.started} attempts"
    return f"{attempts}: {', '.join(parts)}"


def run_summary(run: RunGraph) -> str:
    """The run in one line: which, of what, how it ended."""
    head = f"run {run.run_id} of {run.name}" if run.run_id else f"a run of {run.name}"
    text = f"{head}: {run.status}"
    if run.failed_step is not None:
        text += f" in step {run.failed_step!r}"
    if run.error is not None and run.status != "cancelled":
        text += f": {run.error}"
    elif run.active and run.status == "running":
        text += f" (steps at work: {', '.join(run.active)})"
    return " ".join(text.split())


def mermaid_overlay(
    run: RunGraph,
) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str], list[str]]:
    """``mermaid``'s labels, classes, class styles and comments for ``run``."""
    from ._graph import _escape

    labels: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for name, activity in run.steps.items():
        title = name if activity.order is None else f"{activity.order}. {name}"
        labels[name] = [_escape(title), _escape(step_summary(activity))]
        if name == run.failed_step:
            kinds[name] = "failed"
            if run.error:
                error = run.error if len(run.error) <= 80 else run.error[:77] + "..."
                labels[name].append(_escape(error))
        elif name in run.active:
            kinds[name] = "active"
        elif not activity.ran:
            kinds[name] = "notrun"
    for node in run.graph.nodes:
        if isinstance(node, EventNode):
            seen = run.events.get(node.id, 0)
            if seen:
                labels[node.id] = [_escape(f"{node.label} \N{MULTIPLICATION SIGN}{seen}")]
            else:
                kinds[node.id] = "notrun"
    return labels, kinds, RUN_STYLES, [run_summary(run)]
