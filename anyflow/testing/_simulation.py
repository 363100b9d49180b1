"""What a simulated run did: its ``Simulation`` (outcome, ticks, events,
the choices that replay it) and the report hypothesis shows for a failing
example; the ``Schedule`` of choices that drives a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ..events import Event, StopEvent
from ..runtime.vocabulary import Completed, Outcome, Tick

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Schedule", "Simulation", "note_for_hypothesis", "without_trailing_zeros"]


@attrs.frozen
class Schedule:
    """The choices of a simulation, one per decision: choice ``c`` among ``n``
    options takes option ``c % n``.  Only a decision with two options or more
    uses a choice: where one thing only can happen, it happens, so a schedule's
    first choices are the run's first real decisions however deep they are.
    When the choices run out, the first option is taken: the step that has
    waited longest, as an event loop runs its ready tasks, so the run goes
    as an ordinary run does.  Hypothesis shrinks a failing schedule toward
    that order."""

    choices: tuple[int, ...] = ()


@attrs.frozen
class Simulation:
    """What a simulated run did.  ``report()`` tells how to replay it."""

    seed: int | None
    schedule: Schedule
    """The choices made, at the decisions that had two options or more, the
    first options at the end left out (replays the run with
    ``simulate(..., schedule=...)``)."""
    outcome: Outcome
    ticks: tuple[Tick, ...]
    events: tuple[Event, ...]
    """The events the run published, its last one included."""
    calls: dict[str, int]
    """Step attempts started, by step."""
    trace: tuple[str, ...]
    """What the scheduler let happen, one line per decision."""
    stuck: bool
    """The run waited for an event that no one would send; it was cancelled."""
    error: BaseException | None
    resource_calls: dict[str, int] = attrs.field(factory=dict)
    """Calls made by steps to their resources' methods, by fault site
    (``"bank.charge"``): the names a ``Fault(call=...)`` takes."""
    stores: tuple[Any, ...] = ()
    """The run's state store after each tick (as ``ctx.store.to_dict()``),
    for ``replay(workflow, simulation)``."""

    @property
    def completed(self) -> bool:
        return isinstance(self.outcome, Completed)

    @property
    def result(self) -> Any:
        """The run's result; its exception (with this simulation's report as a
        note) if it did not complete."""
        if self.error is not None:
            if _in_hypothesis_test():
                raise self.error  # hypothesis prints the report noted by finish()
            notes = getattr(self.error, "__notes__", None)
            if notes is None:
                self.error.__notes__ = notes = []  # type: ignore[attr-defined]
            report = self.report()
            if report not in notes:
                notes.append(report)
            raise self.error
        assert isinstance(self.outcome, Completed)
        stop = self.outcome.stop_event
        return stop.result if type(stop) is StopEvent else stop

    def report(self) -> str:
        """The seed (or schedule) that replays this run, what the scheduler
        chose, and the ticks, one per line."""
        replay = f"seed={self.seed}" if self.seed is not None else f"schedule={self.schedule!r}"
        lines = [f"anyflow simulation: replay with simulate(..., {replay})"]
        lines.append(f"  scheduler: {'; '.join(self.trace) or '(nothing to choose)'}")
        lines.append(f"  {len(self.ticks)} ticks:")
        lines += [f"    {i:3d} {_describe(tick)}" for i, tick in enumerate(self.ticks)]
        return "\n".join(lines)


def without_trailing_zeros(choices: Sequence[int]) -> tuple[int, ...]:
    """The shortest schedule that makes the same choices (once the choices
    run out, the first option is taken)."""
    end = len(choices)
    while end and choices[end - 1] == 0:
        end -= 1
    return tuple(choices[:end])


def _describe(tick: Tick) -> str:
    fields = []
    for field in attrs.fields(type(tick)):
        value = getattr(tick, field.name)
        if field.name == "now":
            fields.append(f"t={value:g}")
        elif value is not None and value != field.default:
            text = type(value).__name__ if isinstance(value, Event) else repr(value)
            fields.append(f"{field.name}={text}")
    return f"{type(tick).__name__}({', '.join(fields)})"


def _in_hypothesis_test() -> bool:
    try:
        from hypothesis.control import currently_in_test_context
    except ImportError:  # pragma: no cover - hypothesis is optional
        return False
    return currently_in_test_context()


def note_for_hypothesis(simulation: Simulation) -> None:
    """Inside a hypothesis test, the falsifying example's report shows how to
    replay the run (once: ``result`` then adds no copy to the exception)."""
    if _in_hypothesis_test():
        from hypothesis import note

        note(simulation.report())
