"""Rebuilding a recorded run, tick by tick: the basis for debugging a run from
production.  The reducer is pure, so folding a run's ticks gives the state it
had after each of them, and the commands it gave, exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import attrs

from ..durable.journal import decode_ticks
from ..runtime.vocabulary import Command, RunState, Tick, TickRejected, reduce, run_spec
from ._simulation import Simulation

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..durable import Store
    from ..workflow import Workflow

__all__ = ["Replay", "ReplayedTick", "describe", "replay", "replay_journal"]


@attrs.frozen
class ReplayedTick:
    index: int
    tick: Tick
    state: RunState
    """The run's state after this tick."""
    commands: tuple[Command, ...]
    """What the tick made the run do."""
    store: Any = None
    """The run's state store after this tick (``ctx.store.to_dict()``), when
    it was recorded (a ``Simulation``'s); None otherwise."""


class Replay(Sequence[ReplayedTick]):
    """A recorded run, tick by tick: ``replay[i].state`` is the state after
    tick ``i``; ``show(i)`` describes it (with the state store, for a
    simulated run)."""

    def __init__(self, initial: RunState, steps: list[ReplayedTick]) -> None:
        self.initial = initial
        self._steps = steps

    @overload
    def __getitem__(self, index: int) -> ReplayedTick: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ReplayedTick]: ...
    def __getitem__(self, index: int | slice) -> ReplayedTick | Sequence[ReplayedTick]:
        return self._steps[index]

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[ReplayedTick]:
        return iter(self._steps)

    def state_at(self, index: int) -> RunState:
        """The state after tick ``index`` (-1: before the first)."""
        return self.initial if index < 0 else self._steps[index].state

    def show(self, index: int | None = None) -> str:
        """The state after tick ``index`` (the last one by default), in words."""
        if index is None:
            index = len(self._steps) - 1
        head = "before the first tick" if index < 0 else f"after tick {index}"
        if index >= 0:
            step = self._steps[index]
            head += f" {type(step.tick).__name__} at t={step.tick.now:g}"
        text = f"{head}:\n{describe(self.state_at(index))}"
        if index >= 0 and self._steps[index].store is not None:
            text += "\n" + _describe_store(self._steps[index].store)
        return text


def _describe_store(store: Any) -> str:
    if not store:
        return "  store: (empty)"
    if isinstance(store, dict):
        return "\n".join(f"  store {key}: {value!r}" for key, value in store.items())
    return f"  store: {store!r}"


def describe(state: RunState) -> str:
    """A run's state, a line per thing going on."""
    lines = [f"  status: {state.status.value}"]
    if state.outcome is not None:
        lines.append(f"  outcome: {state.outcome!r}")
    if state.deadline is not None:
        lines.append(f"  run deadline: t={state.deadline:g}")
    for worker_id, worker in sorted(state.workers.items()):
        event = type(worker.delivery.event).__name__
        lines.append(
            f"  executing: {worker.step}#{worker_id} on {event} "
            f"(event {worker.delivery.event_id}, attempt {worker.delivery.attempt})"
        )
    for worker_id, waiter in sorted(state.waiting.items()):
        wanted = ", ".join(t.__name__ for t in waiter.event_types)
        due = "" if waiter.deadline is None else f" until t={waiter.deadline:g}"
        lines.append(f"  waiting: {waiter.step}#{worker_id} for {wanted}{due}")
    for retry in state.retries.values():
        due = "" if retry.deadline is None else f" at t={retry.deadline:g}"
        lines.append(
            f"  retry due{due}: {retry.step} on {type(retry.delivery.event).__name__} "
            f"(attempt {retry.delivery.attempt})"
        )
    for name, lane in sorted(state.lanes.items()):
        if lane.queue:
            queued = ", ".join(type(item.event).__name__ for item in lane.queue)
            lines.append(f"  queued for {name}: {queued}")
    for (step, buffer_id), buffer in sorted(state.collections.items()):
        kept = ", ".join(type(ev).__name__ for ev in buffer.items())
        lines.append(f"  collected by {step} ({buffer_id}): {kept}")
    return "\n".join(lines)


def replay(workflow: Workflow, ticks: Simulation | Iterable[Tick]) -> Replay:
    """Fold ``ticks`` (a recorded run's) through the workflow's state machine;
    given a ``Simulation``, its ticks, with the state store after each.

    :raises ValueError: at the first tick the run could not have taken, naming it.
    """
    stores: Sequence[Any] = ()
    if isinstance(ticks, Simulation):
        stores = ticks.stores
        ticks = ticks.ticks
    initial = state = RunState.initial(run_spec(workflow))
    steps = []
    for index, tick in enumerate(ticks):
        try:
            state, commands = reduce(state, tick)
        except TickRejected as exc:
            raise ValueError(f"tick {index} ({tick!r}) does not fit the run: {exc}") from exc
        store = stores[index] if index < len(stores) else None
        steps.append(ReplayedTick(index, tick, state, tuple(commands), store))
    return Replay(initial, steps)


async def replay_journal(store: Store, run_id: str, workflow: Workflow) -> Replay:
    """A durable run's journal, replayed (read without taking the run's lease,
    so a live run can be looked at too).

    :raises JournalCorruptError: naming the record that cannot be read.
    """
    return replay(workflow, decode_ticks(run_id, await store.read_ticks(run_id)))
