"""The transaction every tick handler writes the next run state through.

One ``_Txn`` lives for one ``reduce`` call.  It holds the state's fields,
copies a mapping only when a handler first writes to it (so the previous
state is never touched, and a tick pays only for what it changes), and knows
the moves every handler makes: deliver an event (rules 2 and 7), start or
resume a worker within its step's ``num_workers`` (rule 3), release one, wake
a wait, count an attempt's sends (rule 6) and finish the run.  The handlers
in ``_lifecycle``, ``_delivery``, ``_retries`` and ``_waits`` decide *which*
moves a tick makes; the rules themselves are numbered in ``reducer.py``.

``TickRejected`` and the protocol checks (``_require_running``,
``_executing``) live here too, since the transaction and every handler raise
it; ``reducer`` re-exports it under its old name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .commands import (
    CancelTimer,
    Command,
    Finish,
    Publish,
    ResumeWorker,
    ScheduleTimer,
    StartWorker,
)
from .state import (
    CollectBuffer,
    Delivery,
    JoinBuffer,
    Lane,
    Outcome,
    Resumption,
    RunState,
    RunStatus,
    Waiter,
    WaitMemo,
    Worker,
)
from .timers import Timer, timer_id

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._pqueue import PQueue
    from .ticks import Tick


class TickRejected(Exception):
    """A tick that the state machine cannot accept; the state is unchanged."""


class _Txn:
    """Scratch space for one ``reduce`` call, turned into the next state.

    Mappings are copied on first write only, so the previous state is never
    touched and a tick pays only for what it changes.
    """

    __slots__ = (
        "collections",
        "commands",
        "deadline",
        "idle",
        "joins",
        "lanes",
        "memos",
        "next_event_id",
        "next_worker_id",
        "now",
        "outcome",
        "recoveries",
        "retries",
        "spec",
        "state",
        "status",
        "unclaimed",
        "waiting",
        "workers",
    )

    def __init__(self, state: RunState, now: float) -> None:
        self.state = state
        self.spec = state.spec
        self.now = now
        self.status = state.status
        self.lanes = state.lanes
        self.workers = state.workers
        self.waiting = state.waiting
        self.memos = state.memos
        self.unclaimed = state.unclaimed
        self.recoveries = state.recoveries
        self.idle = state.idle
        self.retries = state.retries
        self.collections = state.collections
        self.joins = state.joins
        self.next_event_id = state.next_event_id
        self.next_worker_id = state.next_worker_id
        self.deadline = state.deadline
        self.outcome = state.outcome
        self.commands: list[Command] = []

    def done(self) -> tuple[RunState, list[Command]]:
        if self.status is RunStatus.RUNNING and (self.idle or self.waiting):
            self._update_idle()
        # Positional, in RunState's field order: this runs once per tick, and
        # keywords cost a third more (tests/core/test_txn.py checks the order).
        state = RunState(
            self.spec,
            self.status,
            self.lanes,
            self.workers,
            self.waiting,
            self.memos,
            self.unclaimed,
            self.recoveries,
            self.idle,
            self.retries,
            self.collections,
            self.next_event_id,
            self.next_worker_id,
            self.deadline,
            self.outcome,
            self.joins,
        )
        return state, self.commands

    def _update_idle(self) -> None:
        idle = (
            not self.workers
            and bool(self.waiting)
            and not self.retries
            and not any(lane.queue for lane in self.lanes.values())
        )
        if idle and not self.idle and self.spec.idle_event is not None:
            self.commands.append(Publish(self.spec.idle_event))
        self.idle = idle

    # Copy-on-write access to the mappings.

    def set_lane(self, name: str, lane: Lane) -> None:
        if self.lanes is self.state.lanes:
            self.lanes = dict(self.lanes)
        self.lanes[name] = lane  # type: ignore[index]

    def _own_workers(self) -> dict[int, Worker]:
        if self.workers is self.state.workers:
            self.workers = dict(self.workers)
        return self.workers  # type: ignore[return-value]

    def _own_waiting(self) -> dict[int, Waiter]:
        if self.waiting is self.state.waiting:
            self.waiting = dict(self.waiting)
        return self.waiting  # type: ignore[return-value]

    def set_memo(self, key: tuple[str, int], memo: WaitMemo | None) -> None:
        if self.memos is self.state.memos:
            self.memos = dict(self.memos)
        if memo is None:
            self.memos.pop(key, None)  # type: ignore[attr-defined]
        else:
            self.memos[key] = memo  # type: ignore[index]

    # Moving work between queues, workers and waiters.

    def deliver(self, event: Any, steps: tuple[str, ...]) -> None:
        event_id = self.next_event_id
        self.next_event_id = event_id + 1
        delivery = Delivery(event_id, event)
        for name in steps:
            spec = self.spec.steps[name]
            item = delivery
            if spec.slots:
                bound = self.join(name, spec.slots, event, exact=spec.exact)
                if bound is None:
                    continue  # held until its set is complete (rule 7)
                item = Delivery(event_id, event, bound=bound)
            lane = self.lanes[name]
            if not lane.queue and lane.running < spec.num_workers:
                self.start(name, lane, item)
            else:
                self.set_lane(name, Lane(lane.queue.push(item), lane.running))

    def join(
        self, name: str, slots: tuple[type, ...], event: Any, *, exact: bool = False
    ) -> tuple[Any, ...] | None:
        """Hold ``event`` in join step ``name``'s buffer; the set it completes,
        taken out of the buffer, or None (rule 7).  ``exact``: an event fits
        only a slot of its own class (``StepSpec.exact``)."""
        fits_slot = _is_exactly if exact else isinstance
        held = self.joins.get(name, _NO_JOIN)
        counts = held.fits or (0,) * len(slots)
        fits = tuple(
            n + 1 if fits_slot(event, t) else n for n, t in zip(counts, slots, strict=True)
        )
        events = held.events.add(event)
        bound: tuple[Any, ...] | None = None
        # Cheap test first: a set needs, for each slot, as many candidates as
        # there are slots of its type.
        if all(n >= slots.count(t) for n, t in zip(fits, slots, strict=True)):
            bound, rest = _bind(events.items(), slots, fits_slot)
            if bound is not None:
                events = CollectBuffer.of(rest)
                fits = tuple(
                    n - sum(fits_slot(ev, t) for ev in bound)
                    for n, t in zip(fits, slots, strict=True)
                )
        if self.joins is self.state.joins:
            self.joins = dict(self.joins)
        if events.total:
            self.joins[name] = JoinBuffer(events, fits)  # type: ignore[index]
        else:
            self.joins.pop(name, None)  # type: ignore[attr-defined]
        return bound

    def start(self, name: str, lane: Lane, delivery: Delivery) -> None:
        worker_id = self.next_worker_id
        self.next_worker_id = worker_id + 1
        self.commands.append(StartWorker(worker_id, name, delivery))
        deadline = self._arm_step_timer(worker_id, self.spec.steps[name].timeout)
        self._own_workers()[worker_id] = Worker(name, delivery, deadline)
        self.set_lane(name, Lane(lane.queue, lane.running + 1))

    def resume(self, name: str, lane: Lane, item: Resumption) -> None:
        self.commands.append(ResumeWorker(item.worker_id, item.event, item.timed_out))
        budget = item.budget if item.budget is not None else self.spec.steps[name].timeout
        deadline = self._arm_step_timer(item.worker_id, budget)
        self._own_workers()[item.worker_id] = Worker(name, item.delivery, deadline, item.sent)
        self.set_lane(name, Lane(lane.queue, lane.running + 1))

    def _arm_step_timer(self, worker_id: int, seconds: float | None) -> float | None:
        if seconds is None:
            return None
        deadline = self.now + seconds
        self.commands.append(ScheduleTimer(timer_id(Timer.STEP, worker_id), deadline))
        return deadline

    def pump(self, name: str) -> None:
        """Start queued work of ``name`` while it has free worker slots."""
        lane = self.lanes[name]
        limit = self.spec.steps[name].num_workers
        while lane.queue and lane.running < limit:
            item, queue = lane.queue.pop()
            lane = Lane(queue, lane.running)
            if type(item) is Resumption:
                self.resume(name, lane, item)
            else:
                self.start(name, lane, item)  # type: ignore[arg-type]
            lane = self.lanes[name]

    def release(self, worker_id: int) -> Worker:
        """Take a worker off its slot (it finished, failed or started waiting)."""
        worker = _executing(self.workers, worker_id)
        del self._own_workers()[worker_id]
        lane = self.lanes[worker.step]
        self.set_lane(worker.step, Lane(lane.queue, lane.running - 1))
        if self.spec.steps[worker.step].timeout is not None:
            self.commands.append(CancelTimer(timer_id(Timer.STEP, worker_id)))
        return worker

    def wake(self, worker_id: int, event: Any, timed_out: bool, answered: bool = True) -> None:
        """End a wait: the step goes on when its step has a free slot."""
        waiter = self._own_waiting().pop(worker_id)
        if waiter.deadline is not None and not timed_out:
            self.commands.append(CancelTimer(timer_id(Timer.WAIT, worker_id)))
        if answered and not timed_out:
            key = (waiter.step, waiter.delivery.event_id)
            memo = self.memos.get(key, _NO_MEMO)
            self.set_memo(key, memo.answered(waiter.waiter_id, event))
        item = Resumption(worker_id, waiter.delivery, event, timed_out, waiter.budget, waiter.sent)
        lane = self.lanes[waiter.step]
        if lane.running < self.spec.steps[waiter.step].num_workers:
            self.resume(waiter.step, lane, item)
        else:
            self.set_lane(waiter.step, Lane(_after_resumptions(lane.queue, item), lane.running))

    def repeated_send(self, worker_id: int) -> bool:
        """Count a send of ``worker_id``'s attempt; whether an earlier execution
        of that attempt made this send already (the attempt runs again after a
        resume, and the memo says how many events it had sent)."""
        worker: Worker | Waiter | None = self.workers.get(worker_id)
        if worker is not None:
            self._own_workers()[worker_id] = Worker(
                worker.step, worker.delivery, worker.deadline, worker.sent + 1
            )
        else:
            # A send while the step waits (from a task of its own) counts on
            # its waiter.  One made after its wait ended, while it waits for a
            # slot, or by a stray task of a finished step, is delivered and
            # counted nowhere: a count that falls short only lets a re-run
            # deliver something again, it never drops a new send.
            worker = self.waiting.get(worker_id)
            if worker is None:
                return False
            self._own_waiting()[worker_id] = attrs.evolve(worker, sent=worker.sent + 1)
        if not self.memos:
            return False
        memo = self.memos.get((worker.step, worker.delivery.event_id))
        return memo is not None and worker.sent < memo.sent_before(worker.delivery.attempt)

    def take_waiter(self, event: Any, step: str | None) -> bool:
        """Give ``event`` to every waiter it matches, oldest first (as
        llama-index-workflows does); whether any took it."""
        takers = [
            worker_id
            for worker_id, waiter in self.waiting.items()
            if (step is None or waiter.step == step) and waiter.matches(event)
        ]
        for worker_id in takers:
            self.wake(worker_id, event, timed_out=False)
        return bool(takers)

    def finish(self, outcome: Outcome) -> None:
        self.status = outcome.status
        self.outcome = outcome
        self.commands.append(Finish(outcome))

    def route(self, event: Any) -> tuple[str, ...]:
        return self.spec.route(type(event))


_NO_MEMO = WaitMemo()
_NO_JOIN = JoinBuffer()


def _is_exactly(event: Any, cls: type) -> bool:
    return type(event) is cls


def _bind(
    events: list[Any],
    slots: tuple[type, ...],
    fits_slot: Callable[[Any, type], bool] = isinstance,
) -> tuple[tuple[Any, ...] | None, list[Any]]:
    """One event per slot out of ``events`` (oldest first), and the rest; or
    (None, ``events``) if some slot cannot be filled (``fits_slot(event, cls)``
    says whether an event may fill a slot of ``cls``).

    Slot by slot, the oldest unused event that fits; when a later slot is left
    empty, the previous slot tries its next candidate (a subclass instance
    taken by a base-class slot may be the only one a later slot can take).
    """
    used = [False] * len(events)
    chosen: list[int] = []

    def fill(slot: int) -> bool:
        if slot == len(slots):
            return True
        wanted = slots[slot]
        for index, event in enumerate(events):
            if not used[index] and fits_slot(event, wanted):
                used[index] = True
                chosen.append(index)
                if fill(slot + 1):
                    return True
                used[index] = False
                chosen.pop()
        return False

    if not fill(0):
        return None, events
    return tuple(events[i] for i in chosen), [ev for i, ev in enumerate(events) if not used[i]]


def _after_resumptions(
    queue: PQueue[Delivery | Resumption], item: Resumption
) -> PQueue[Delivery | Resumption]:
    """``queue`` with ``item`` after the woken waits already at its front and
    before every new delivery: woken waits go on in the order they were woken."""
    woken: list[Delivery | Resumption] = []
    while queue:
        head, rest = queue.pop()
        if type(head) is not Resumption:
            break
        woken.append(head)
        queue = rest
    queue = queue.push_front(item)
    for earlier in reversed(woken):
        queue = queue.push_front(earlier)
    return queue


def _require_running(state: RunState, tick: Tick) -> None:
    if state.status is RunStatus.NOT_STARTED:
        raise TickRejected(f"{type(tick).__name__} before RunStarted: the run has not started")


def _executing(workers: Mapping[int, Worker], worker_id: int) -> Worker:
    worker = workers.get(worker_id)
    if worker is None:
        raise TickRejected(f"no worker {worker_id} is executing in this run")
    return worker
