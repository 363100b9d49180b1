"""How a run begins, goes on after a crash or a pause, and is cancelled.

The handlers of ``RunStarted``, ``RunResumed`` and ``CancelRequested``.  Most of
this module is ``_restored``: a resumed run has nothing executing, so every
attempt that was executing or waiting goes back to the front of its step's
queue, and the wait memos remember what those attempts already got and sent
(rule 6); a run resumed on a new clock forgets the tick times it held (rule 5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._pqueue import PQueue
from ._txn import _NO_MEMO, TickRejected, _require_running, _Txn
from .commands import Command, ScheduleTimer
from .state import (
    RUN_TIMEOUT_TIMER,
    Broken,
    Cancelled,
    Delivery,
    Lane,
    Resumption,
    RunState,
    RunStatus,
    Waiter,
    WaitMemo,
    Worker,
)

if TYPE_CHECKING:
    from .ticks import CancelRequested, RunResumed, RunStarted


def _on_run_started(state: RunState, tick: RunStarted) -> tuple[RunState, list[Command]]:
    if state.status is not RunStatus.NOT_STARTED:
        raise TickRejected("RunStarted twice: a run starts once")
    txn = _Txn(state, tick.now)
    txn.status = RunStatus.RUNNING
    steps = txn.route(tick.start_event)
    if not steps:
        txn.finish(
            Broken(None, f"no step accepts the start event {type(tick.start_event).__name__}"),
        )
        return txn.done()
    if state.spec.timeout is not None:
        txn.deadline = tick.now + state.spec.timeout
        txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, txn.deadline))
    txn.deliver(tick.start_event, steps)
    return txn.done()


def _restored(state: RunState, recovered: bool) -> RunState:
    """``state`` with nothing executing: a resumed run starts over every attempt
    that was executing or waiting, from the front of its step's queue (its
    completed waits are remembered through the memos, and so is how many
    events it had sent, which its re-run does not send again).

    A ``recovered`` run goes on with the clock and the stream it had, so its
    pending retries keep their deadlines and its questions, already on the
    stream, are not asked again.  Any other resumed run (a saved context in a
    new process) has a new clock and a new stream: pending retries are due at
    once and questions are asked again.
    """
    lanes = {name: _without_resumptions(lane) for name, lane in state.lanes.items()}
    unfinished: list[Worker | Waiter] = [*state.workers.values(), *state.waiting.values()]
    if not recovered:
        unfinished += state.retries.values()
    for item in sorted(unfinished, key=lambda w: w.delivery.event_id, reverse=True):
        lane = lanes[item.step]
        lanes[item.step] = Lane(lane.queue.push_front(item.delivery), 0)
    if not recovered:
        lanes = {name: _on_a_new_clock(lane) for name, lane in lanes.items()}
    if recovered:
        memos = dict(state.memos)
        for waiter in state.waiting.values():
            if waiter.deadline is not None:
                key = (waiter.step, waiter.delivery.event_id)
                memo = memos.get(key, _NO_MEMO)
                memos[key] = memo.cut_short(waiter.waiter_id, waiter.deadline)
    else:
        memos = {
            key: WaitMemo(answers=memo.answers, collected=memo.collected, sent=memo.sent)
            for key, memo in state.memos.items()
        }
    # What the cut-short attempts sent is delivered: their re-runs skip it.
    for step, delivery, sent in _sends(state):
        key = (step, delivery.event_id)
        memos[key] = memos.get(key, _NO_MEMO).sends(delivery.attempt, sent)
    return attrs.evolve(
        state,
        status=RunStatus.RUNNING,
        lanes={name: Lane(lane.queue, 0) for name, lane in lanes.items()},
        workers={},
        waiting={},
        memos=memos,
        idle=False,
        retries=state.retries if recovered else {},
        deadline=state.deadline if recovered else None,
        outcome=None,
    )


def _sends(state: RunState) -> list[tuple[str, Delivery, int]]:
    """(step, delivery, events sent) of the attempts a resume cuts short that
    sent events: executing, waiting, or woken and queued for a slot."""
    unfinished: list[Worker | Waiter] = [*state.workers.values(), *state.waiting.values()]
    found = [(w.step, w.delivery, w.sent) for w in unfinished if w.sent]
    for step, lane in state.lanes.items():
        for item in lane.queue:
            if type(item) is Resumption and item.sent:
                found.append((step, item.delivery, item.sent))
    return found


def _without_resumptions(lane: Lane) -> Lane:
    """``lane`` with each woken wait that was queued for a free slot turned back
    into its delivery, in its place: its worker is gone, so its attempt starts
    over (and finds its answer in the wait memo)."""
    if not any(type(item) is Resumption for item in lane.queue):
        return lane
    queue: PQueue[Delivery | Resumption] = PQueue()
    for item in lane.queue:
        queue = queue.push(item.delivery if type(item) is Resumption else item)
    return Lane(queue, lane.running)


def _on_a_new_clock(lane: Lane) -> Lane:
    """``lane`` with the tick times its deliveries hold forgotten: a run resumed
    in a new process has a new clock, on which they mean nothing, so a
    delivery's elapsed time counts again from its next attempt."""
    if not any(_timed(item) for item in lane.queue):
        return lane
    queue: PQueue[Delivery | Resumption] = PQueue()
    for item in lane.queue:
        if _timed(item):
            assert type(item) is Delivery  # _restored queued no Resumption
            item = attrs.evolve(
                item, first_started_at=None, first_failed_at=None, last_failed_at=None
            )
        queue = queue.push(item)
    return Lane(queue, lane.running)


def _timed(item: Delivery | Resumption) -> bool:
    delivery = item.delivery if type(item) is Resumption else item
    assert type(delivery) is Delivery
    return (
        delivery.first_started_at is not None
        or delivery.first_failed_at is not None
        or delivery.last_failed_at is not None
    )


def _on_run_resumed(state: RunState, tick: RunResumed) -> tuple[RunState, list[Command]]:
    if state.status is not RunStatus.RUNNING:
        raise TickRejected(f"only a running run can be resumed, not a {state.status.value} one")
    txn = _Txn(_restored(state, tick.recovered), tick.now)
    if state.spec.timeout is not None:
        if txn.deadline is None:
            txn.deadline = tick.now + state.spec.timeout
        txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, txn.deadline))
    for retry_timer, retry in txn.retries.items():
        assert retry.deadline is not None
        txn.commands.append(ScheduleTimer(retry_timer, retry.deadline))
    for name in state.spec.steps:
        txn.pump(name)
    return txn.done()


def _on_cancel_requested(state: RunState, tick: CancelRequested) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    txn.finish(Cancelled())
    return txn.done()
