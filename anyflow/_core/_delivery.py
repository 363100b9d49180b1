"""Where an event goes: a sent event, and the event a step returns.

The handlers of ``EventSent`` and ``StepCompleted``.  A sent event goes first to
the waits that asked for it, then to every step that takes it (rule 2), or is
kept for a later wait; a step's return value ends the run (a stop event), is
published, is routed on, or, when nothing takes it, ends the run as broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._txn import TickRejected, _require_running, _Txn
from .commands import Command, Publish
from .state import Broken, Completed, RunState

if TYPE_CHECKING:
    from .ticks import EventSent, StepCompleted


def _on_event_sent(state: RunState, tick: EventSent) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    event = tick.event
    event_type = type(event)
    if tick.step is None:
        steps = state.spec.route(event_type)
    else:
        spec = state.spec.steps.get(tick.step)
        if spec is None:
            raise TickRejected(f"no step {tick.step!r} in this workflow")
        steps = (tick.step,) if spec.takes(event_type) else ()
    txn = _Txn(state, tick.now)
    if tick.worker_id is not None and txn.repeated_send(tick.worker_id):
        # A re-run of the attempt that sent it already (rule 6): delivered then.
        return txn.done()
    # A step waiting for this event has asked for it: it goes first.
    if state.waiting and txn.take_waiter(event, tick.step):
        return txn.done()
    if steps:
        txn.deliver(event, steps)
    elif isinstance(event, state.spec.buffer_types):
        txn.unclaimed = (*state.unclaimed, (event, tick.step))
    elif tick.step is None:
        raise TickRejected(f"no step accepts {event_type.__name__}")
    else:
        raise TickRejected(f"step {tick.step!r} does not accept {event_type.__name__}")
    return txn.done()


def _on_step_completed(state: RunState, tick: StepCompleted) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    worker = txn.release(tick.worker_id)
    if state.memos:
        txn.set_memo((worker.step, worker.delivery.event_id), None)
    output = tick.output
    if output is not None:
        if isinstance(output, state.spec.stop_types):
            txn.finish(Completed(output))
            return txn.done()
        published = isinstance(output, state.spec.publish_types)
        if published:
            txn.commands.append(Publish(output))
        steps = txn.route(output)
        if steps:
            txn.deliver(output, steps)
        elif not published:
            txn.finish(
                Broken(
                    worker.step,
                    f"step {worker.step!r} returned {type(output).__name__}, which no step "
                    "accepts; add a step that accepts it, or fix the step's return annotation",
                ),
            )
            return txn.done()
    txn.pump(worker.step)
    return txn.done()
