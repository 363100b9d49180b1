"""A failed attempt, and what the run's timers end: retries and timeouts.

The handlers of ``StepFailed`` and ``TimerFired``.  A failure without a retry
goes to the step's ``@catch_error`` step while it has recoveries left, or ends
the run; one with a retry delay parks the delivery until its timer fires, and
then puts it at the front of its step's queue (rule 3).  A timer's deadline is
in the state, so a fire that comes early is rescheduled and a late one, for
something that already happened, is ignored (rule 5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._txn import _require_running, _Txn
from .commands import CancelWorker, Command, ScheduleTimer
from .state import RUN_TIMEOUT_TIMER, Failed, Lane, RunState, TimedOut, Worker
from .timers import Timer, timer_id, timer_of

if TYPE_CHECKING:
    from .ticks import StepFailed, TimerFired


def _on_step_failed(state: RunState, tick: StepFailed) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    worker = txn.release(tick.worker_id)
    delivery = worker.delivery
    if tick.retry_delay is None:
        if state.memos:
            txn.set_memo((worker.step, delivery.event_id), None)
        catcher = state.spec.catchers.get(worker.step)
        if catcher is not None and tick.failure_event is not None:
            name, limit = catcher
            used = state.recoveries.get(name, 0)
            if used < limit:
                txn.recoveries = {**state.recoveries, name: used + 1}
                txn.deliver(tick.failure_event, (name,))
                txn.pump(worker.step)
                return txn.done()
        txn.finish(Failed(worker.step, tick.error, delivery.attempt))
        return txn.done()
    retry_timer = timer_id(Timer.RETRY, tick.worker_id)
    deadline = tick.now + tick.retry_delay
    first_failed_at = tick.now if delivery.first_failed_at is None else delivery.first_failed_at
    first_started_at = delivery.first_started_at
    if first_started_at is None:  # the first failure: its attempt was the first
        first_started_at = tick.started_at
    txn.retries = {
        **state.retries,
        retry_timer: Worker(
            worker.step,
            attrs.evolve(
                delivery,
                attempt=delivery.attempt + 1,
                last_error=tick.error,
                first_failed_at=first_failed_at,
                first_started_at=first_started_at,
                last_failed_at=tick.now,
            ),
            deadline,
        ),
    }
    txn.commands.append(ScheduleTimer(retry_timer, deadline))
    txn.pump(worker.step)
    return txn.done()


def _on_timer_fired(state: RunState, tick: TimerFired) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    # Timer ids are reused by the waits and resumptions of one attempt, so a
    # late fire is checked against the deadline in the state (rule 5).
    match timer_of(tick.timer_id):
        case (Timer.RUN_TIMEOUT, _):
            deadline = state.deadline
            if deadline is None:
                return state, []
            if tick.now < deadline:
                txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, deadline))
            else:
                assert state.spec.timeout is not None
                txn.finish(TimedOut(state.spec.timeout, state.active_steps()))
            return txn.done()
        case (Timer.WAIT, int(worker_id)):
            waiter = state.waiting.get(worker_id)
            if waiter is None or waiter.deadline is None:
                return state, []  # the event came first
            if tick.now < waiter.deadline:
                txn.commands.append(ScheduleTimer(tick.timer_id, waiter.deadline))
            else:
                txn.wake(worker_id, None, timed_out=True)
            return txn.done()
        case (Timer.STEP, int(worker_id)):
            worker = state.workers.get(worker_id)
            if worker is None or worker.deadline is None:
                return state, []  # it finished (or started waiting) first
            if tick.now < worker.deadline:
                txn.commands.append(ScheduleTimer(tick.timer_id, worker.deadline))
            else:
                txn.commands.append(CancelWorker(worker_id))
            return txn.done()
    retry = state.retries.get(tick.timer_id)  # a retry's timer, restored or not
    if retry is None:
        return state, []  # a timer cancelled after it fired: nothing to do
    retries = dict(state.retries)
    del retries[tick.timer_id]
    txn.retries = retries
    lane = txn.lanes[retry.step]
    txn.set_lane(retry.step, Lane(lane.queue.push_front(retry.delivery), lane.running))
    txn.pump(retry.step)
    return txn.done()
