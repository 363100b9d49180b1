"""The reducer: ``reduce(state, tick) -> (state, commands)``.

Theory of operation
===================

A run is a fold of ticks.  The driver receives ticks (facts: an event arrived,
a step finished or failed, a timer fired, the caller cancelled), feeds each to
``reduce`` and executes the commands that come back (start a worker, publish an
event, schedule a timer, answer a ``collect_events`` call, finish).  Nothing
here does I/O, reads a clock or draws a random number, so the same ticks always
give the same states and commands: that is what replay, durability and fuzzing
stand on.

Rule 1: everything that decides where an event goes, when a step may run and
how a run ends lives in this module and the handler modules it dispatches to
(listed below).  The driver only executes commands.

Rule 2: an event is delivered once to every step that accepts its type (or a
base class of it), or to the one step it was sent to; a step waiting in
``wait_for_event`` for an event like it takes it first (every such wait,
oldest first, as in llama-index-workflows), and then no step gets it.  Each
delivery is, at any moment, in exactly one place: a step's queue (new, or as
a woken wait's ``Resumption``), an executing worker, a waiter, a pending
retry, or done.

Rule 3: a step never has more than ``num_workers`` deliveries executing.  A
delivery waits in its step's FIFO queue for a free worker; a retried delivery
goes to the front of the queue.

Rule 4: a run that has finished stays finished: every later tick is ignored and
produces no command.  A tick that breaks the protocol (an unknown worker, an
event no step accepts) raises ``TickRejected`` and leaves the state untouched.

Rule 5: time is a tick field.  Deadlines are absolute numbers in the state;
timers are commands; a timer that fires early is rescheduled.  A retried
delivery remembers when its first attempt started (the first ``StepFailed``
tells) and when it last failed, of which the retry policy's elapsed time and
``ctx.retry_info()`` are made; a run resumed on a new clock (not
``recovered``) forgets those times.

Rule 6: a resume runs the interrupted attempts again, and their re-runs repeat
nothing that the run already holds.  Each delivery's ``WaitMemo`` remembers
what its attempts got (wait answers, ``collect_events`` results) and, for an
attempt a resume cut short, how many events it had sent: its re-run's first
that many ``send_event`` calls are dropped, the later ones are new.  A retry is
a new attempt: its sends are all delivered.

Rule 7: a join step (``StepSpec.slots``: a step with several event
parameters) is given its events a set at a time.  An event routed to it waits
in the step's join buffer (``RunState.joins``) until the buffer holds one event
for every slot; those events then leave the buffer together as one delivery
(``Delivery.bound``, in slot order), whose ``event`` is the one that completed
the set.  Slots are filled in order, each with the oldest held event that fits
it (an instance of its type), taking a younger one only when the older would
leave a later slot empty; so same-type slots bind in arrival order.  Events
beyond a set stay for the next one.  Everything else about the delivery (queue,
workers, retries, waits, catchers, resumes) is an ordinary delivery's, and a
held event is in exactly one place too: the buffer, or one delivery's set.

State fields: see ``state.RunState``.  Tick kinds: ``ticks.Tick``.  Commands:
``commands.Command``.  The hypothesis state machine in
``tests/core/test_reducer_stateful.py`` checks rules 2-7 as invariants.

Where the rules live
====================

This module holds the rules and the dispatch table; the handlers sit beside
it, one module per kind of fact, so that none grows past a few hundred lines
(the state machine stays readable in one place: the rules above, the table
below):

- ``reduce`` (below): a finished run ignores every tick (rule 4).
- ``_txn``: the transaction a handler writes the next state through, and the
  moves every handler shares (delivering, joining, starting and resuming
  workers, arming step timers, waking waits, counting sends): rules 2, 3, 5,
  6 and 7; ``TickRejected`` (rule 4).
- ``_lifecycle``: ``RunStarted``, ``RunResumed`` (restoring a run cut short)
  and ``CancelRequested``: rules 4, 5 and 6.
- ``_delivery``: ``EventSent`` and ``StepCompleted``: rules 2, 4 and 6.
- ``_retries``: ``StepFailed`` and ``TimerFired`` (retries, run, step and wait
  timeouts): rules 3 and 5.
- ``_waits``: ``WaitStarted``, ``WaitAbandoned`` and ``EventCollected``: rules
  2 and 6.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._delivery import _on_event_sent as _on_event_sent
from ._delivery import _on_step_completed as _on_step_completed
from ._lifecycle import _on_a_new_clock as _on_a_new_clock
from ._lifecycle import _on_cancel_requested as _on_cancel_requested
from ._lifecycle import _on_run_resumed as _on_run_resumed
from ._lifecycle import _on_run_started as _on_run_started
from ._lifecycle import _restored as _restored
from ._lifecycle import _sends as _sends
from ._lifecycle import _timed as _timed
from ._lifecycle import _without_resumptions as _without_resumptions
from ._retries import _on_step_failed as _on_step_failed
from ._retries import _on_timer_fired as _on_timer_fired
from ._txn import _NO_JOIN as _NO_JOIN
from ._txn import _NO_MEMO as _NO_MEMO
from ._txn import TickRejected as TickRejected
from ._txn import _after_resumptions as _after_resumptions
from ._txn import _bind as _bind
from ._txn import _executing as _executing
from ._txn import _is_exactly as _is_exactly
from ._txn import _require_running as _require_running
from ._txn import _Txn as _Txn
from ._waits import _EMPTY_BUFFER as _EMPTY_BUFFER
from ._waits import _on_event_collected as _on_event_collected
from ._waits import _on_wait_abandoned as _on_wait_abandoned
from ._waits import _on_wait_started as _on_wait_started
from ._waits import _take as _take
from .commands import Command
from .state import RunState
from .ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)

_Handler = Callable[[RunState, Any], tuple[RunState, list[Command]]]

# One handler per tick kind (tests/core/test_completeness.py checks the table
# covers the Tick union exactly); the comment names the module it lives in.
_HANDLERS: dict[type, _Handler] = {
    RunStarted: _on_run_started,  # _lifecycle
    RunResumed: _on_run_resumed,  # _lifecycle
    EventSent: _on_event_sent,  # _delivery
    StepCompleted: _on_step_completed,  # _delivery
    StepFailed: _on_step_failed,  # _retries
    TimerFired: _on_timer_fired,  # _retries
    CancelRequested: _on_cancel_requested,  # _lifecycle
    EventCollected: _on_event_collected,  # _waits
    WaitStarted: _on_wait_started,  # _waits
    WaitAbandoned: _on_wait_abandoned,  # _waits
}


def reduce(state: RunState, tick: Tick) -> tuple[RunState, list[Command]]:
    """Apply ``tick`` to ``state``; return the next state and the commands to run.

    :raises TickRejected: if the tick breaks the protocol; ``state`` is unchanged.
    """
    if state.status.finished:
        return state, []
    return _HANDLERS[type(tick)](state, tick)
