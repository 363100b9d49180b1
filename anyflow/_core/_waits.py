"""A step that asks the run for events: ``wait_for_event`` and ``collect_events``.

The handlers of ``WaitStarted``, ``WaitAbandoned`` and ``EventCollected``.  A
waiting step gives up its worker slot until its answer comes (rule 2 says who
gets an event first); a wait or a collection that an earlier attempt of the
same delivery completed answers again from the delivery's ``WaitMemo``, so a
retry or a resume repeats nothing (rule 6).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ._txn import _NO_MEMO, TickRejected, _executing, _require_running, _Txn
from .commands import Command, Publish, ResumeWorker, ReturnCollected, ScheduleTimer
from .state import CollectBuffer, Resumption, RunState, Waiter
from .timers import Timer, timer_id

if TYPE_CHECKING:
    from .ticks import EventCollected, WaitAbandoned, WaitStarted


def _on_wait_started(state: RunState, tick: WaitStarted) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    worker = _executing(state.workers, tick.worker_id)
    txn = _Txn(state, tick.now)
    key = (worker.step, worker.delivery.event_id)
    memo = state.memos.get(key, _NO_MEMO)
    deadline = None if tick.timeout is None else tick.now + tick.timeout
    if tick.waiter_id in memo.deadlines:
        # The same wait, cut short by a crash: its deadline stands.
        if deadline is not None:
            deadline = memo.deadlines[tick.waiter_id]
        memo = memo.resumed(tick.waiter_id)
        txn.set_memo(key, memo)
    waiter = Waiter(
        worker.step,
        worker.delivery,
        tick.waiter_id,
        tick.event_types,
        tick.requirements,
        deadline=deadline,
        budget=None if worker.deadline is None else max(worker.deadline - tick.now, 0.0),
        sent=worker.sent,
    )
    # A wait this delivery already completed (before a retry or a resume)
    # returns the same event at once.  A remembered answer that does not fit
    # this wait was for another wait under the same id: this one waits anew.
    answer = memo.answers.get(tick.waiter_id, _NO_MEMO)
    if answer is not _NO_MEMO and waiter.matches(answer):
        txn.commands.append(ResumeWorker(tick.worker_id, answer, False))
        return txn.done()
    # An event that arrived before anyone waited for it.
    for index, (event, target) in enumerate(state.unclaimed):
        if (target is None or target == worker.step) and waiter.matches(event):
            txn.unclaimed = state.unclaimed[:index] + state.unclaimed[index + 1 :]
            txn.set_memo(key, memo.answered(tick.waiter_id, event))
            txn.commands.append(ResumeWorker(tick.worker_id, event, False))
            return txn.done()
    txn.release(tick.worker_id)
    txn._own_waiting()[tick.worker_id] = waiter
    question = tick.waiter_event
    if question is not None and memo.published.get(tick.waiter_id, _NO_MEMO) != question:
        txn.commands.append(Publish(question))
        txn.set_memo(key, memo.asked(tick.waiter_id, question))
    if deadline is not None:
        txn.commands.append(ScheduleTimer(timer_id(Timer.WAIT, tick.worker_id), deadline))
    txn.pump(worker.step)
    return txn.done()


def _on_wait_abandoned(state: RunState, tick: WaitAbandoned) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    if tick.worker_id not in state.waiting:
        if any(
            type(item) is Resumption and item.worker_id == tick.worker_id
            for lane in state.lanes.values()
            for item in lane.queue
        ):
            return state, []  # its answer came and waits for a slot: it goes on then
        raise TickRejected(f"no worker {tick.worker_id} is waiting in this run")
    txn = _Txn(state, tick.now)
    txn.wake(tick.worker_id, None, timed_out=False, answered=False)
    return txn.done()


def _on_event_collected(state: RunState, tick: EventCollected) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    worker = _executing(state.workers, tick.worker_id)
    expected = tick.expected
    if not expected:
        return state, [ReturnCollected(tick.worker_id, ())]
    memo_key = (worker.step, worker.delivery.event_id)
    memo = state.memos.get(memo_key, _NO_MEMO)
    if memo.collected:
        done, result = memo.collected_before(tick.buffer_id, tick.event)
        if done:
            # A re-run of this delivery (a retry, or after a crash): its event
            # is in the buffer already, or completed it; the same answer again.
            return state, [ReturnCollected(tick.worker_id, result)]
    key = (worker.step, tick.buffer_id)
    buffer = state.collections.get(key, _EMPTY_BUFFER).add(tick.event)
    events: tuple[Any, ...] | None = None
    # Cheap test first: a set of n events cannot be complete with fewer than n
    # buffered, so a fan-in of n costs O(1) per event until the last one.
    if buffer.total >= len(expected):
        events, buffer = _take(buffer, expected)
    collections = dict(state.collections)
    if buffer.total:
        collections[key] = buffer
    else:
        collections.pop(key, None)
    txn = _Txn(state, tick.now)
    txn.collections = collections
    txn.set_memo(memo_key, memo.collects(tick.buffer_id, tick.event, events))
    txn.commands.append(ReturnCollected(tick.worker_id, events))
    return txn.done()


_EMPTY_BUFFER = CollectBuffer()


def _take(buffer: CollectBuffer, expected: Any) -> tuple[tuple[Any, ...] | None, CollectBuffer]:
    """Take one buffered event of each expected type (exact type, oldest first)."""
    items = buffer.items()
    need = Counter(expected)
    have = Counter(type(ev) for ev in items)
    if any(have[t] < n for t, n in need.items()):
        return None, buffer
    positions: dict[type, list[int]] = {}
    for index, ev in enumerate(items):
        if need.get(type(ev), 0) > len(positions.setdefault(type(ev), [])):
            positions[type(ev)].append(index)
    cursor = dict.fromkeys(positions, 0)
    used: set[int] = set()
    taken = []
    for t in expected:
        index = positions[t][cursor[t]]
        cursor[t] += 1
        used.add(index)
        taken.append(items[index])
    rest = [ev for index, ev in enumerate(items) if index not in used]
    return tuple(taken), CollectBuffer.of(rest)
