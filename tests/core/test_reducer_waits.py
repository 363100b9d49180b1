"""Example-based tests of the reducer's step features (see ``anyflow/_core/reducer.py``).

``wait_for_event`` (waiters, memos, unclaimed events, resumptions, wait timers,
abandoned waits), idle detection, ``@catch_error`` catchers and per-attempt step
timeouts.  Events are tiny plain classes, as in ``test_reducer.py``; ``H`` plays
the part of a ``HumanResponseEvent`` (a buffer type no step accepts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest

from anyflow._core.commands import (
    CancelTimer,
    CancelWorker,
    Command,
    Finish,
    Publish,
    ResumeWorker,
    ScheduleTimer,
    StartWorker,
)
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import (
    Delivery,
    Failed,
    Lane,
    Resumption,
    RunSpec,
    RunState,
    RunStatus,
    StepSpec,
    Waiter,
    WaitMemo,
    Worker,
)
from anyflow._core.ticks import (
    EventCollected,
    EventSent,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class A:
    pass


class B:
    pass


class H:
    """An answer from outside: no step accepts it, and unclaimed ones are kept."""

    def __init__(self, topic: str = "x") -> None:
        self.topic = topic

    def __repr__(self) -> str:
        return f"H({self.topic!r})@{id(self):x}"


@attrs.frozen
class Ask:
    """A waiter event: the question published when a step starts waiting.

    Equal when their prompts are, like real events (a retry builds its question
    anew, equal to the one it asked before)."""

    prompt: str = "ok?"


class F:
    """What a catching step receives when a caught step fails for good."""


class S:
    """The stop type."""


IDLE = object()
"""The spec's idle event."""


def make_spec(
    *steps: StepSpec,
    catchers: dict[str, tuple[str, int]] | None = None,
    idle_event: object = IDLE,
) -> RunSpec:
    return RunSpec(
        steps={s.name: s for s in steps},
        stop_types=(S,),
        catchers=catchers or {},
        buffer_types=(H,),
        idle_event=idle_event,
    )


def one_slot(idle_event: object = IDLE) -> RunSpec:
    """Step ``a`` (one worker) accepts A, step ``b`` (two workers) accepts B."""
    return make_spec(StepSpec("a", (A,), 1), StepSpec("b", (B,), 2), idle_event=idle_event)


def feed(state: RunState, ticks: Iterable[Tick]) -> tuple[RunState, list[Command]]:
    """Reduce ``ticks`` in order; return the last state and every command."""
    out: list[Command] = []
    for tick in ticks:
        state, commands = reduce(state, tick)
        out += commands
    return state, out


def started(spec: RunSpec, start_event: object, *ticks: Tick) -> tuple[RunState, list[Command]]:
    return feed(RunState.initial(spec), [RunStarted(start_event, 0.0), *ticks])


def resumed(commands: list[Command]) -> list[ResumeWorker]:
    return [c for c in commands if isinstance(c, ResumeWorker)]


def independent_copy(state: RunState) -> RunState:
    """An equal state that shares no mutable mapping with ``state``."""
    return attrs.evolve(
        state,
        lanes=dict(state.lanes),
        workers=dict(state.workers),
        waiting=dict(state.waiting),
        memos=dict(state.memos),
        recoveries=dict(state.recoveries),
        retries=dict(state.retries),
        collections=dict(state.collections),
    )


# A wait gives the worker slot back.


def test_a_wait_releases_the_worker_slot_for_the_next_queued_delivery() -> None:
    a0, a1 = A(), A()
    state, _ = started(one_slot(), a0, EventSent(a1))
    assert list(state.lanes["a"].queue) == [Delivery(1, a1)]

    state, commands = reduce(state, WaitStarted(0, "w", (H,), (("topic", "x"),)))
    assert commands == [StartWorker(1, "a", Delivery(1, a1))]
    assert state.workers == {1: Worker("a", Delivery(1, a1))}
    assert state.waiting == {0: Waiter("a", Delivery(0, a0), "w", (H,), (("topic", "x"),))}
    assert state.lanes["a"] == Lane(running=1)
    assert state.memos == {}  # nothing asked, nothing answered yet
    assert state.active_steps() == ("a",)


def test_a_wait_with_nothing_queued_leaves_the_slot_free() -> None:
    a0, a1 = A(), A()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H,)))
    assert state.lanes["a"] == Lane()
    # A new delivery takes the free slot at once.
    state, commands = reduce(state, EventSent(a1))
    assert commands == [StartWorker(1, "a", Delivery(1, a1))]


# Waiter events: published once per waiter id and delivery.


def test_waiter_event_is_published_once_per_waiter_id() -> None:
    a0, ask = A(), Ask()
    spec = one_slot(idle_event=None)
    state, commands = started(spec, a0, WaitStarted(0, "w", (H,), waiter_event=ask))
    assert commands[-1:] == [Publish(ask)]
    assert state.memos == {("a", 0): WaitMemo({"w": ask})}

    # The step stops waiting on its own, then waits again under the same id with
    # the same question (a new but equal event): not asked again.
    state, commands = feed(state, [WaitAbandoned(0), WaitStarted(0, "w", (H,), waiter_event=Ask())])
    assert [c for c in commands if isinstance(c, Publish)] == []
    assert 0 in state.waiting

    # Under another id it is a new question.
    state, commands = feed(state, [WaitAbandoned(0), WaitStarted(0, "v", (H,), waiter_event=Ask())])
    assert [c for c in commands if isinstance(c, Publish)] == [Publish(Ask())]
    assert state.memos == {("a", 0): WaitMemo({"w": ask, "v": ask})}


def test_a_changed_question_is_published_again() -> None:
    a0, first, second = A(), Ask("ok?"), Ask("still ok?")
    state, commands = started(
        one_slot(idle_event=None),
        a0,
        WaitStarted(0, "w", (H,), waiter_event=first),
        WaitAbandoned(0),
        WaitStarted(0, "w", (H,), waiter_event=second),
    )
    assert [c for c in commands if isinstance(c, Publish)] == [Publish(first), Publish(second)]
    assert state.memos == {("a", 0): WaitMemo({"w": second})}


def test_waiter_event_is_not_published_again_after_a_retry() -> None:
    a0, ask = A(), Ask()
    error = ValueError("lost")
    state, commands = started(
        one_slot(idle_event=None),
        a0,
        WaitStarted(0, "w", (H,), waiter_event=ask),
        WaitAbandoned(0),
        StepFailed(0, error, retry_delay=1.0, now=2.0),
        TimerFired("retry-0", 3.0),
    )
    assert [c for c in commands if isinstance(c, Publish)] == [Publish(ask)]
    retried = Delivery(0, a0, 2, error, 2.0, last_failed_at=2.0)
    assert state.workers == {1: Worker("a", retried)}
    # The retry keeps the delivery's memo ...
    assert state.memos == {("a", 0): WaitMemo({"w": ask})}
    # ... so its wait under the same id waits without asking again.
    state, commands = reduce(state, WaitStarted(1, "w", (H,), waiter_event=Ask()))
    assert commands == []
    assert state.waiting == {1: Waiter("a", retried, "w", (H,))}


def test_waiter_event_is_published_again_for_another_delivery() -> None:
    a0, a1 = A(), A()
    _, commands = started(
        one_slot(idle_event=None),
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,), waiter_event=Ask()),  # worker 1 starts a1
        WaitStarted(1, "w", (H,), waiter_event=Ask()),
    )
    assert [c for c in commands if isinstance(c, Publish)] == [Publish(Ask()), Publish(Ask())]


# Memos: a completed wait is not waited for again by the same delivery.


def test_a_memoized_answer_returns_at_once_after_a_retry() -> None:
    a0, a1, h = A(), A(), H()
    error = ValueError("lost the answer")
    state, commands = started(
        one_slot(),
        a0,
        WaitStarted(0, "w", (H,), waiter_event=Ask()),
        EventSent(h, external=True),
    )
    assert resumed(commands) == [ResumeWorker(0, h, False)]
    assert state.memos[("a", 0)].answers == {"w": h}

    state, _ = feed(
        state,
        [
            StepFailed(0, error, retry_delay=1.0, now=5.0),
            TimerFired("retry-0", 6.0),  # worker 1 retries a0
            EventSent(a1),  # queued behind it
        ],
    )
    retried = Delivery(0, a0, 2, error, 5.0, last_failed_at=5.0)
    assert state.workers == {1: Worker("a", retried)}
    assert list(state.lanes["a"].queue) == [Delivery(1, a1)]

    before = state
    state, commands = reduce(state, WaitStarted(1, "w", (H,), waiter_event=Ask(), timeout=3.0))
    # The same event at once: no question, no timer, and the slot is kept.
    assert commands == [ResumeWorker(1, h, False)]
    assert state.workers == {1: Worker("a", retried)}
    assert state.waiting == {}
    assert state.lanes["a"] == before.lanes["a"]
    assert state.memos == before.memos


def test_a_memoized_answer_is_per_waiter_id() -> None:
    a0, h = A(), H()
    state, _ = started(
        one_slot(), a0, WaitStarted(0, "w", (H,)), EventSent(h), WaitStarted(0, "v", (H,))
    )
    assert 0 in state.waiting  # "v" never got an answer


def test_a_remembered_answer_that_does_not_fit_the_wait_is_not_returned() -> None:
    """The same waiter id in a retry, for another kind of event (the step's code
    changed its mind): the wait waits anew, and its answer replaces the old one."""
    a0, h, b = A(), H(), B()
    state, _ = started(
        one_slot(),
        a0,
        WaitStarted(0, "w", (H,)),
        EventSent(h),
        StepFailed(0, ValueError(), 1.0, now=1.0),
        TimerFired("retry-0", 2.0),  # worker 1
    )
    state, commands = reduce(state, WaitStarted(1, "w", (B,)))
    assert commands == [Publish(IDLE)]
    assert 1 in state.waiting
    state, commands = reduce(state, EventSent(b))
    assert commands == [ResumeWorker(1, b, False)]
    assert state.memos[("a", 0)].answers == {"w": b}


@pytest.mark.parametrize("how", ["completes", "fails for good"])
def test_memos_are_dropped_when_the_delivery_finishes(how: str) -> None:
    spec = make_spec(
        StepSpec("a", (A,), 1), StepSpec("k", (F,), 1), catchers={"a": ("k", 5)}, idle_event=None
    )
    a0, a1, h0, h1 = A(), A(), H("x"), H("y")
    state, _ = started(
        spec,
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,), (("topic", "x"),), waiter_event=Ask()),  # worker 1 starts a1
        WaitStarted(1, "w", (H,), (("topic", "y"),), waiter_event=Ask()),
        EventSent(h0),  # worker 0 resumes
    )
    assert set(state.memos) == {("a", 0), ("a", 1)}
    end: Tick = (
        StepCompleted(0) if how == "completes" else StepFailed(0, ValueError(), None, 1.0, F())
    )
    state, _ = reduce(state, end)
    assert state.status is RunStatus.RUNNING
    assert set(state.memos) == {("a", 1)}
    # The other delivery's memo lives on until it finishes too.
    state, _ = reduce(state, EventSent(h1))
    assert state.memos[("a", 1)].answers == {"w": h1}
    state, _ = reduce(state, StepCompleted(1))
    assert state.memos == {}


def test_a_retry_keeps_the_memo() -> None:
    a0, h = A(), H()
    state, _ = started(
        one_slot(), a0, WaitStarted(0, "w", (H,)), EventSent(h), StepFailed(0, ValueError(), 1.0)
    )
    assert state.memos == {("a", 0): WaitMemo({}, {"w": h})}


# Events for waiters.


def test_an_event_matching_a_waiter_goes_to_the_waiter_not_to_the_steps() -> None:
    a0, b = A(), B()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (B,)))
    before = state
    state, commands = reduce(state, EventSent(b, external=True))
    # Step "b" accepts B, but the waiter asked for it.
    assert commands == [ResumeWorker(0, b, False)]
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert state.lanes["b"] == Lane()
    assert state.next_event_id == before.next_event_id
    assert state.waiting == {}


def test_an_event_answers_every_waiter_it_matches_oldest_first() -> None:
    # As in llama-index-workflows: one answer reaches every wait it fits.
    spec = make_spec(StepSpec("a", (A,), 3), idle_event=None)
    a0, a1, a2 = A(), A(), A()
    h0, other = H("x"), H("y")
    state, _ = started(
        spec,
        a0,
        EventSent(a1),
        EventSent(a2),
        WaitStarted(1, "w", (H,)),
        WaitStarted(0, "w", (H,), (("topic", "x"),)),
        WaitStarted(2, "w", (H,), (("topic", "y"),)),
    )
    assert list(state.waiting) == [1, 0, 2]
    state, commands = reduce(state, EventSent(h0))
    assert resumed(commands) == [ResumeWorker(1, h0, False), ResumeWorker(0, h0, False)]
    assert list(state.waiting) == [2]
    state, commands = reduce(state, EventSent(other))
    assert resumed(commands) == [ResumeWorker(2, other, False)]


def test_a_waiter_that_waits_again_goes_to_the_back() -> None:
    spec = make_spec(StepSpec("a", (A,), 2), idle_event=None)
    a0, a1 = A(), A()
    h0 = H()
    state, _ = started(
        spec,
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,)),
        WaitStarted(1, "w", (H,)),
        WaitAbandoned(0),
        WaitStarted(0, "v", (H,)),
    )
    assert list(state.waiting) == [1, 0]
    _, commands = reduce(state, EventSent(h0))
    assert resumed(commands) == [ResumeWorker(1, h0, False), ResumeWorker(0, h0, False)]


def test_requirements_must_match() -> None:
    a0, wrong, right = A(), H("y"), H("x")
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H,), (("topic", "x"),)))
    state, commands = reduce(state, EventSent(wrong))
    assert commands == []
    assert 0 in state.waiting
    assert state.unclaimed == ((wrong, None),)
    state, commands = reduce(state, EventSent(right))
    assert commands == [ResumeWorker(0, right, False)]
    assert state.unclaimed == ((wrong, None),)


def test_a_requirement_on_a_missing_field_never_matches() -> None:
    a0, b = A(), B()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (B,), (("topic", None),)))
    state, commands = reduce(state, EventSent(b))
    # Not for the waiter: B has no ``topic``.  Step "b" gets it instead.
    assert commands == [StartWorker(1, "b", Delivery(1, b))]
    assert 0 in state.waiting


def test_a_waiter_for_several_types_takes_any_of_them() -> None:
    a0, b = A(), B()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H, B)))
    _, commands = reduce(state, EventSent(b))
    assert commands == [ResumeWorker(0, b, False)]


def test_an_event_sent_to_a_step_goes_to_that_step_not_to_another_steps_waiter() -> None:
    a0, b = A(), B()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (B,)))
    state, commands = reduce(state, EventSent(b, step="b"))
    assert commands == [StartWorker(1, "b", Delivery(1, b))]
    assert 0 in state.waiting


def test_an_event_sent_to_a_step_goes_to_that_steps_waiter() -> None:
    a0, b0, b1 = A(), B(), B()
    state, _ = started(
        one_slot(), a0, EventSent(b0), WaitStarted(0, "w", (B,)), WaitStarted(1, "w", (B,))
    )
    assert list(state.waiting) == [0, 1]
    # Worker 0 (step "a") waits longer, but the event is for step "b".
    state, commands = reduce(state, EventSent(b1, step="b"))
    assert commands == [ResumeWorker(1, b1, False)]
    assert list(state.waiting) == [0]


def test_step_outputs_do_not_go_to_waiters() -> None:
    a0, b0, b1 = A(), B(), B()
    state, _ = started(one_slot(), a0, EventSent(b0), WaitStarted(0, "w", (B,)))
    state, commands = reduce(state, StepCompleted(1, b1))
    assert commands == [StartWorker(2, "b", Delivery(2, b1))]
    assert 0 in state.waiting


# Events nobody waits for yet.


def test_an_unclaimed_answer_is_kept_and_taken_by_a_later_wait_in_order() -> None:
    a0, h0, h1 = A(), H(), H()
    state, commands = started(one_slot(), a0, EventSent(h0, external=True), EventSent(h1))
    assert commands == [StartWorker(0, "a", Delivery(0, a0))]
    assert state.unclaimed == ((h0, None), (h1, None))
    assert state.next_event_id == 1  # kept, not delivered

    state, commands = reduce(state, WaitStarted(0, "w", (H,), waiter_event=Ask(), timeout=5.0))
    # Answered at once: no question, no timer, the slot is kept.
    assert commands == [ResumeWorker(0, h0, False)]
    assert state.unclaimed == ((h1, None),)
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert state.waiting == {}
    assert state.lanes["a"].running == 1
    assert state.memos == {("a", 0): WaitMemo({}, {"w": h0})}

    state, commands = reduce(state, WaitStarted(0, "v", (H,)))
    assert commands == [ResumeWorker(0, h1, False)]
    assert state.unclaimed == ()


def test_a_later_wait_takes_the_oldest_unclaimed_event_it_matches() -> None:
    a0, hy, hx0, hx1 = A(), H("y"), H("x"), H("x")
    state, _ = started(one_slot(), a0, EventSent(hy), EventSent(hx0), EventSent(hx1))
    state, commands = reduce(state, WaitStarted(0, "w", (H,), (("topic", "x"),)))
    assert commands == [ResumeWorker(0, hx0, False)]
    assert state.unclaimed == ((hy, None), (hx1, None))


def test_an_unclaimed_event_of_another_type_does_not_answer_a_wait() -> None:
    a0, h = A(), H()
    state, _ = started(one_slot(), a0, EventSent(h), WaitStarted(0, "w", (B,)))
    assert 0 in state.waiting
    assert state.unclaimed == ((h, None),)


def test_an_event_matching_nobody_that_is_not_a_buffer_type_is_rejected() -> None:
    state, _ = started(one_slot(), A(), WaitStarted(0, "w", (H,)))
    with pytest.raises(TickRejected, match=r"^no step accepts Ask$"):
        reduce(state, EventSent(Ask()))


# Resumptions.


def test_a_wake_with_the_slots_full_queues_a_resumption_at_the_front() -> None:
    a0, a1, a2, h = A(), A(), A(), H()
    state, _ = started(
        one_slot(),
        a0,
        EventSent(a1),
        EventSent(a2),
        WaitStarted(0, "w", (H,)),  # worker 1 starts a1; a2 stays queued
    )
    state, commands = reduce(state, EventSent(h))
    resumption = Resumption(0, Delivery(0, a0), h, False)
    assert commands == []
    assert state.waiting == {}
    assert list(state.lanes["a"].queue) == [resumption, Delivery(2, a2)]
    assert state.lanes["a"].running == 1
    # The answer is remembered as soon as it came.
    assert state.memos[("a", 0)].answers == {"w": h}
    assert state.active_steps() == ("a",)

    state, commands = reduce(state, StepCompleted(1))
    assert commands == [ResumeWorker(0, h, False)]
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert list(state.lanes["a"].queue) == [Delivery(2, a2)]

    state, commands = reduce(state, StepCompleted(0))
    assert commands == [StartWorker(2, "a", Delivery(2, a2))]


def test_a_resumption_is_taken_by_the_slot_a_new_wait_frees() -> None:
    a0, a1, h = A(), A(), H()
    state, _ = started(
        one_slot(idle_event=None),
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,)),  # worker 1 starts a1
        EventSent(h),  # worker 0's answer: queued
    )
    state, commands = reduce(state, WaitStarted(1, "w", (H,)))
    assert commands == [ResumeWorker(0, h, False)]
    assert list(state.waiting) == [1]


# Wait timeouts.


def test_a_wait_timeout_resumes_the_step_timed_out_without_a_memo() -> None:
    a0 = A()
    state, commands = started(one_slot(), a0, WaitStarted(0, "w", (H,), timeout=5.0, now=1.0))
    assert ScheduleTimer("wait-0", 6.0) in commands
    assert state.waiting[0].deadline == 6.0

    state, commands = reduce(state, TimerFired("wait-0", 6.0))
    assert commands == [ResumeWorker(0, None, True)]
    assert state.waiting == {}
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert state.memos == {}
    # Nothing is remembered: the same waiter waits again.
    state, _ = reduce(state, WaitStarted(0, "w", (H,), now=7.0))
    assert 0 in state.waiting


def test_a_wait_timeout_with_the_slots_full_queues_a_timed_out_resumption() -> None:
    a0, a1 = A(), A()
    state, _ = started(
        one_slot(), a0, EventSent(a1), WaitStarted(0, "w", (H,), timeout=2.0, now=1.0)
    )
    state, commands = reduce(state, TimerFired("wait-0", 3.0))
    assert commands == []
    assert list(state.lanes["a"].queue) == [Resumption(0, Delivery(0, a0), None, True)]
    state, commands = reduce(state, StepCompleted(1))
    assert commands == [ResumeWorker(0, None, True)]


def test_an_answer_cancels_the_wait_timer_and_a_late_fire_is_ignored() -> None:
    a0, h = A(), H()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H,), timeout=5.0))
    state, commands = reduce(state, EventSent(h, now=2.0))
    assert commands == [CancelTimer("wait-0"), ResumeWorker(0, h, False)]
    after, commands = reduce(state, TimerFired("wait-0", 5.0))
    assert after is state
    assert commands == []


def test_an_untimed_wait_schedules_no_timer_and_cancels_none() -> None:
    a0, h = A(), H()
    state, commands = started(one_slot(), a0, WaitStarted(0, "w", (H,)))
    assert not any(isinstance(c, ScheduleTimer | CancelTimer) for c in commands)
    _, commands = reduce(state, EventSent(h))
    assert commands == [ResumeWorker(0, h, False)]


# Abandoned waits.


def test_an_abandoned_wait_goes_back_to_a_free_slot() -> None:
    a0 = A()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H,), waiter_event=Ask(), timeout=5.0))
    memos = state.memos
    state, commands = reduce(state, WaitAbandoned(0))
    assert commands == [CancelTimer("wait-0"), ResumeWorker(0, None, False)]
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert state.waiting == {}
    assert state.lanes["a"].running == 1
    assert state.memos == memos  # abandoned: no answer to remember


def test_an_abandoned_wait_with_the_slots_full_is_queued() -> None:
    a0, a1 = A(), A()
    state, _ = started(one_slot(), a0, EventSent(a1), WaitStarted(0, "w", (H,)))
    state, commands = reduce(state, WaitAbandoned(0))
    assert commands == []
    assert list(state.lanes["a"].queue) == [Resumption(0, Delivery(0, a0), None, False)]
    state, commands = reduce(state, StepCompleted(1))
    assert commands == [ResumeWorker(0, None, False)]


# Idle detection.


def idle_publishes(commands: list[Command]) -> int:
    return commands.count(Publish(IDLE))


def test_idle_is_published_once_when_the_last_executing_step_waits() -> None:
    a0, b0 = A(), B()
    x = (("topic", "x"),)
    state, commands = started(one_slot(), a0, EventSent(b0), WaitStarted(0, "w", (H,), x))
    # Step "b" still executes: not idle.
    assert idle_publishes(commands) == 0
    assert not state.idle

    state, commands = reduce(state, WaitStarted(1, "v", (H,), x))
    assert commands == [Publish(IDLE)]
    assert state.idle

    # Nothing that leaves every step waiting publishes it again.
    state, commands = feed(state, [EventSent(H("other")), EventSent(H("more"))])
    assert idle_publishes(commands) == 0
    assert state.idle
    assert len(state.unclaimed) == 2


def test_idle_again_only_after_the_run_was_busy() -> None:
    a0, h0, h1 = A(), H(), H()
    ticks: list[Tick] = [
        WaitStarted(0, "w", (H,)),  # idle
        EventSent(h0),  # busy
        WaitStarted(0, "v", (H,)),  # idle again
        WaitAbandoned(0),  # busy
        WaitStarted(0, "u", (H,)),  # idle again
        EventSent(h1),  # busy
    ]
    state = started(one_slot(), a0)[0]
    flags = []
    counts = []
    for tick in ticks:
        state, commands = reduce(state, tick)
        flags.append(state.idle)
        counts.append(idle_publishes(commands))
    assert flags == [True, False, True, False, True, False]
    assert counts == [1, 0, 1, 0, 1, 0]


def test_not_idle_while_work_is_queued() -> None:
    a0, a1 = A(), A()
    state, commands = started(one_slot(), a0, EventSent(a1), WaitStarted(0, "w", (H,)))
    assert idle_publishes(commands) == 0
    assert not state.idle  # worker 1 took the freed slot
    state, commands = reduce(state, WaitStarted(1, "w", (H,)))
    assert commands == [Publish(IDLE)]


def test_not_idle_while_a_retry_is_pending() -> None:
    a0, b0 = A(), B()
    error = ValueError()
    state, commands = started(
        one_slot(),
        a0,
        EventSent(b0),
        WaitStarted(0, "w", (H,)),
        StepFailed(1, error, retry_delay=1.0, now=1.0),
    )
    assert idle_publishes(commands) == 0
    assert not state.idle
    state, commands = reduce(state, TimerFired("retry-1", 2.0))
    assert commands == [StartWorker(2, "b", Delivery(1, b0, 2, error, 1.0, last_failed_at=1.0))]
    state, commands = reduce(state, WaitStarted(2, "w", (H,)))
    assert commands == [Publish(IDLE)]


def test_not_idle_when_nothing_waits() -> None:
    state, commands = started(one_slot(), A(), StepCompleted(0))
    assert idle_publishes(commands) == 0
    assert not state.idle


def test_idle_is_tracked_without_an_idle_event() -> None:
    a0 = A()
    state, commands = started(one_slot(idle_event=None), a0, WaitStarted(0, "w", (H,)))
    assert commands == [StartWorker(0, "a", Delivery(0, a0))]  # nothing published
    assert state.idle


# Catchers.


def caught_spec(limit: int = 2) -> RunSpec:
    return make_spec(StepSpec("a", (A,), 2), StepSpec("k", (F,), 1), catchers={"a": ("k", limit)})


def test_a_caught_final_failure_goes_to_the_catcher() -> None:
    a0, a1, a2, f0, f1, f2 = A(), A(), A(), F(), F(), F()
    error = ValueError("boom")
    state, _ = started(caught_spec(), a0, EventSent(a1), EventSent(a2))
    assert list(state.lanes["a"].queue) == [Delivery(2, a2)]
    state, commands = reduce(state, StepFailed(0, error, None, 1.0, f0))
    # The failure goes to the catcher, and the freed slot to the queued delivery.
    assert commands == [StartWorker(2, "k", Delivery(3, f0)), StartWorker(3, "a", Delivery(2, a2))]
    assert state.status is RunStatus.RUNNING
    assert state.recoveries == {"k": 1}

    state, commands = reduce(state, StepFailed(1, error, None, 2.0, f1))
    # Step "k" is busy: the failure waits in its queue.
    assert commands == []
    assert list(state.lanes["k"].queue) == [Delivery(4, f1)]
    assert state.recoveries == {"k": 2}

    # The maximum is reached: the next failure fails the run.
    state, commands = reduce(state, StepFailed(3, error, None, 3.0, f2))
    assert commands == [Finish(Failed("a", error, 1))]
    assert state.status is RunStatus.FAILED
    assert state.recoveries == {"k": 2}


def test_a_retry_does_not_go_to_the_catcher() -> None:
    a0 = A()
    error = ValueError()
    state, commands = started(caught_spec(), a0, StepFailed(0, error, 1.0, 1.0, F()))
    assert commands[-1:] == [ScheduleTimer("retry-0", 2.0)]
    assert state.recoveries == {}
    assert state.lanes["k"] == Lane()
    retried = Delivery(0, a0, 2, error, 1.0, last_failed_at=1.0)
    assert state.retries == {"retry-0": Worker("a", retried, 2.0)}


def test_a_final_failure_without_a_failure_event_is_not_caught() -> None:
    error = ValueError()
    state, commands = started(caught_spec(), A(), StepFailed(0, error, None, 1.0, None))
    assert commands[-1] == Finish(Failed("a", error, 1))
    assert state.recoveries == {}


def test_a_failure_of_a_step_nobody_catches_fails_the_run() -> None:
    spec = make_spec(
        StepSpec("a", (A,), 1),
        StepSpec("b", (B,), 1),
        StepSpec("k", (F,), 1),
        catchers={"a": ("k", 3)},
    )
    error = ValueError()
    state, commands = started(spec, B(), StepFailed(0, error, None, 1.0, F()))
    assert commands[-1:] == [Finish(Failed("b", error, 1))]
    assert state.recoveries == {}


def test_a_caught_failure_frees_the_slot_for_the_next_delivery() -> None:
    spec = make_spec(StepSpec("a", (A,), 1), StepSpec("k", (F,), 1), catchers={"a": ("k", 1)})
    a0, a1, f = A(), A(), F()
    _, commands = started(spec, a0, EventSent(a1), StepFailed(0, ValueError(), None, 1.0, f))
    assert commands[-2:] == [
        StartWorker(1, "k", Delivery(2, f)),
        StartWorker(2, "a", Delivery(1, a1)),
    ]


# Step timeouts.


def timed_spec() -> RunSpec:
    return make_spec(StepSpec("t", (A,), 1, timeout=5.0), StepSpec("b", (B,), 1))


def test_a_timed_step_attempt_gets_a_timer_that_its_end_cancels() -> None:
    a0 = A()
    state, commands = reduce(RunState.initial(timed_spec()), RunStarted(a0, 10.0))
    assert commands == [StartWorker(0, "t", Delivery(0, a0)), ScheduleTimer("step-0", 15.0)]
    assert state.workers == {0: Worker("t", Delivery(0, a0), deadline=15.0)}
    _, commands = reduce(state, StepCompleted(0, now=12.0))
    assert commands == [CancelTimer("step-0")]


def test_an_untimed_step_gets_no_step_timer() -> None:
    b0 = B()
    state, commands = reduce(RunState.initial(timed_spec()), RunStarted(b0, 10.0))
    assert commands == [StartWorker(0, "b", Delivery(0, b0))]
    _, commands = reduce(state, StepCompleted(0, now=12.0))
    assert commands == []


def test_a_step_timer_for_an_executing_attempt_cancels_it() -> None:
    state, _ = feed(RunState.initial(timed_spec()), [RunStarted(A(), 10.0)])
    after, commands = reduce(state, TimerFired("step-0", 15.0))
    assert commands == [CancelWorker(0)]
    assert after == state
    # The interrupted attempt fails (the retry policy decides) and its slot is freed.
    after, commands = reduce(after, StepFailed(0, TimeoutError(), retry_delay=1.0, now=15.0))
    assert commands == [CancelTimer("step-0"), ScheduleTimer("retry-0", 16.0)]
    after, commands = reduce(after, TimerFired("retry-0", 16.0))
    # The retry is a new attempt with a timer of its own.
    assert commands[-1] == ScheduleTimer("step-1", 21.0)


def test_a_step_timer_for_a_finished_attempt_is_ignored() -> None:
    state, _ = feed(RunState.initial(timed_spec()), [RunStarted(A(), 10.0), StepCompleted(0)])
    after, commands = reduce(state, TimerFired("step-0", 15.0))
    assert after is state
    assert commands == []


def test_a_queued_delivery_gets_its_step_timer_when_it_starts() -> None:
    a0, a1 = A(), A()
    state, commands = feed(
        RunState.initial(timed_spec()), [RunStarted(a0, 10.0), EventSent(a1, now=11.0)]
    )
    assert commands == [StartWorker(0, "t", Delivery(0, a0)), ScheduleTimer("step-0", 15.0)]
    _, commands = reduce(state, StepCompleted(0, now=13.0))
    assert commands == [
        CancelTimer("step-0"),
        StartWorker(1, "t", Delivery(1, a1)),
        ScheduleTimer("step-1", 18.0),
    ]


def test_waiting_suspends_the_step_timer() -> None:
    a0, h = A(), H()
    state, _ = feed(RunState.initial(timed_spec()), [RunStarted(a0, 10.0)])
    state, commands = reduce(state, WaitStarted(0, "w", (H,), now=10.0))
    assert commands == [CancelTimer("step-0"), Publish(IDLE)]
    # A fire that was already on its way finds nothing executing.
    after, commands = reduce(state, TimerFired("step-0", 15.0))
    assert after is state
    assert commands == []

    state, commands = reduce(state, EventSent(h, now=20.0))
    assert commands == [ResumeWorker(0, h, False), ScheduleTimer("step-0", 25.0)]
    state, commands = reduce(state, TimerFired("step-0", 25.0))
    assert commands == [CancelWorker(0)]


def test_a_queued_resumption_gets_its_step_timer_when_it_resumes() -> None:
    a0, a1, h = A(), A(), H()
    state, _ = feed(
        RunState.initial(timed_spec()),
        [
            RunStarted(a0, 10.0),
            EventSent(a1, now=10.0),
            WaitStarted(0, "w", (H,), now=10.0),  # worker 1 starts a1, timer step-1
            EventSent(h, now=11.0),  # queued: no timer while it waits for a slot
        ],
    )
    # It carries what is left of its step timeout (all of it: it waited at once).
    assert list(state.lanes["t"].queue) == [Resumption(0, Delivery(0, a0), h, False, 5.0)]
    _, commands = reduce(state, StepCompleted(1, now=12.0))
    assert commands == [
        CancelTimer("step-1"),
        ResumeWorker(0, h, False),
        ScheduleTimer("step-0", 17.0),
    ]


def test_a_memoized_answer_keeps_the_step_timer_running() -> None:
    a0, h = A(), H()
    _, commands = feed(
        RunState.initial(timed_spec()),
        [RunStarted(a0, 10.0), EventSent(h, now=10.0), WaitStarted(0, "w", (H,), now=11.0)],
    )
    # Answered from the unclaimed events: never released, so no timer command.
    assert commands[-1:] == [ResumeWorker(0, h, False)]
    assert not any(isinstance(c, CancelTimer) for c in commands)


# Rejected ticks.


def _rejection_fixture() -> list[Tick]:
    """Worker 0 waits (step a), worker 1 executes (step b), worker 2 finished (step a)."""
    return [
        RunStarted(A(), 0.0),
        EventSent(A()),
        EventSent(B()),
        WaitStarted(0, "w", (H,), (("topic", "x"),), waiter_event=Ask(), timeout=9.0),
        StepCompleted(2),
        EventSent(H("y")),  # not for worker 0: kept
    ]


REJECTED = [
    pytest.param(
        WaitStarted(42, "w", (H,)), r"^no worker 42 is executing in this run$", id="wait-unknown"
    ),
    pytest.param(
        WaitStarted(0, "w", (H,)), r"^no worker 0 is executing in this run$", id="wait-waiting"
    ),
    pytest.param(
        WaitStarted(2, "w", (H,)), r"^no worker 2 is executing in this run$", id="wait-finished"
    ),
    pytest.param(WaitAbandoned(42), r"^no worker 42 is waiting in this run$", id="abandon-unknown"),
    pytest.param(WaitAbandoned(1), r"^no worker 1 is waiting in this run$", id="abandon-executing"),
    pytest.param(WaitAbandoned(2), r"^no worker 2 is waiting in this run$", id="abandon-finished"),
    pytest.param(
        StepCompleted(0), r"^no worker 0 is executing in this run$", id="complete-waiting"
    ),
    pytest.param(
        StepFailed(0, ValueError(), 1.0),
        r"^no worker 0 is executing in this run$",
        id="fail-waiting",
    ),
    pytest.param(
        EventCollected(0, "buf", A(), [A]),
        r"^no worker 0 is executing in this run$",
        id="collect-waiting",
    ),
]


@pytest.mark.parametrize(("tick", "message"), REJECTED)
def test_rejected_wait_ticks_raise_and_change_nothing(tick: Tick, message: str) -> None:
    state, _ = feed(RunState.initial(one_slot()), _rejection_fixture())
    assert state.waiting
    assert state.workers
    assert state.memos
    assert state.unclaimed
    expected = independent_copy(state)
    with pytest.raises(TickRejected, match=message):
        reduce(state, tick)
    assert state == expected


@pytest.mark.parametrize(
    "tick", [WaitStarted(0, "w", (H,)), WaitAbandoned(0)], ids=lambda t: type(t).__name__
)
def test_wait_ticks_before_the_start_are_rejected(tick: Tick) -> None:
    state = RunState.initial(one_slot())
    with pytest.raises(TickRejected, match=r"before RunStarted: the run has not started$"):
        reduce(state, tick)


@pytest.mark.parametrize(
    "tick",
    [WaitStarted(1, "w", (H,)), WaitAbandoned(0), EventSent(H()), TimerFired("wait-0", 99.0)],
    ids=lambda t: type(t).__name__,
)
def test_a_finished_run_ignores_wait_ticks(tick: Tick) -> None:
    state, _ = feed(RunState.initial(one_slot()), [*_rejection_fixture(), StepCompleted(1, S())])
    assert state.status is RunStatus.COMPLETED
    after, commands = reduce(state, tick)
    assert after is state
    assert commands == []


# Late and early timers (rule 5), step timeout budgets, abandoned waits whose
# answer is queued, and answers sent to one step.  The first test of each kind
# was written against a reducer that got it wrong (fixed in a67a91b).


def test_abandoning_a_wait_whose_answer_is_queued_changes_nothing() -> None:
    """The driver sends ``WaitAbandoned`` when the step's own code cancels its wait
    before it saw a ``ResumeWorker``; an answer that came while the step's slots were
    full is queued as a ``Resumption`` and has not been sent as a ``ResumeWorker``
    yet, so the driver cannot know.  Rejecting the tick crashed the run (the
    driver raised ``TickRejected`` out of ``wait_for_event``)."""
    a0, a1, h = A(), A(), H()
    state, _ = started(
        one_slot(),
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,)),  # worker 1 starts a1
        EventSent(h),  # worker 0's answer: queued, no slot free
    )
    assert list(state.lanes["a"].queue) == [Resumption(0, Delivery(0, a0), h, False)]
    after, commands = reduce(state, WaitAbandoned(0))
    assert after is state
    assert commands == []
    state, commands = reduce(state, StepCompleted(1))
    # Worker 0 goes on once, in the freed slot.
    assert commands == [ResumeWorker(0, h, False)]
    assert state.workers == {0: Worker("a", Delivery(0, a0))}
    assert not state.lanes["a"].queue


@pytest.mark.parametrize(
    ("second_timeout", "expected"),
    [(None, []), (10.0, [ScheduleTimer("wait-0", 14.95)])],
    ids=["untimed", "later-deadline"],
)
def test_a_stale_wait_timer_does_not_time_out_a_later_wait(
    second_timeout: float | None, expected: list[Command]
) -> None:
    """``wait-<worker id>`` is reused by every wait of one attempt.  A fire of the
    first wait's timer that was already on its way when the answer cancelled it
    must not time out the attempt's next wait, which has no timer (the fire is
    ignored) or a later deadline (the timer is scheduled again)."""
    a0, h = A(), H()
    state, _ = started(
        one_slot(),
        a0,
        WaitStarted(0, "w1", (H,), timeout=5.0, now=0.0),  # wait-0 due at 5.0
        EventSent(h, now=4.9),  # cancels wait-0: too late, it is already firing
        WaitStarted(0, "w2", (H,), timeout=second_timeout, now=4.95),
    )
    after, commands = reduce(state, TimerFired("wait-0", 5.0))
    assert commands == expected
    assert after == state


def test_an_early_wait_timer_is_scheduled_again() -> None:
    a0 = A()
    state, _ = started(one_slot(), a0, WaitStarted(0, "w", (H,), timeout=5.0, now=1.0))
    after, commands = reduce(state, TimerFired("wait-0", 5.5))
    assert commands == [ScheduleTimer("wait-0", 6.0)]
    assert after == state
    _, commands = reduce(after, TimerFired("wait-0", 6.0))
    assert commands == [ResumeWorker(0, None, True)]


def test_a_stale_step_timer_does_not_cancel_a_resumed_attempt() -> None:
    """``step-<worker id>`` is cancelled when an attempt starts waiting and
    scheduled again when it resumes; a fire of the first timer that was already on
    its way must not interrupt the resumed attempt before its new deadline."""
    a0, h = A(), H()
    state, _ = feed(
        RunState.initial(timed_spec()),
        [
            RunStarted(a0, 0.0),  # step-0 due at 5.0
            WaitStarted(0, "w", (H,), now=1.0),  # cancels step-0: too late, already firing
            EventSent(h, now=2.0),  # resumes with 4 s left: step-0 due at 6.0
        ],
    )
    assert state.workers[0].deadline == 6.0
    after, commands = reduce(state, TimerFired("step-0", 5.0))
    assert commands == [ScheduleTimer("step-0", 6.0)]
    assert after == state
    _, commands = reduce(after, TimerFired("step-0", 6.0))
    assert commands == [CancelWorker(0)]


def test_an_early_step_timer_is_scheduled_again() -> None:
    state, _ = feed(RunState.initial(timed_spec()), [RunStarted(A(), 10.0)])
    after, commands = reduce(state, TimerFired("step-0", 14.0))
    assert commands == [ScheduleTimer("step-0", 15.0)]
    assert after == state


def test_the_step_timeout_counts_execution_before_a_wait() -> None:
    """``StepSpec.timeout``: "seconds one attempt may execute (time spent waiting for
    an event excluded)".  An attempt that executes 4 s of its 5, waits, and
    resumes has 1 s left, not 5 again."""
    a0, h = A(), H()
    state, _ = feed(
        RunState.initial(timed_spec()),
        [RunStarted(a0, 0.0), WaitStarted(0, "w", (H,), now=4.0)],
    )
    assert state.waiting[0].budget == 1.0
    _, commands = reduce(state, EventSent(h, now=100.0))
    assert commands == [ResumeWorker(0, h, False), ScheduleTimer("step-0", 101.0)]


def test_the_step_timeout_budget_carries_over_several_waits() -> None:
    a0, h0, h1 = A(), H(), H()
    state, commands = feed(
        RunState.initial(timed_spec()),
        [
            RunStarted(a0, 0.0),  # 5 s
            WaitStarted(0, "w1", (H,), now=1.0),  # 4 s left
            EventSent(h0, now=10.0),  # due at 14
            WaitStarted(0, "w2", (H,), now=12.0),  # 2 s left
            EventSent(h1, now=50.0),
        ],
    )
    assert [c for c in commands if isinstance(c, ScheduleTimer)] == [
        ScheduleTimer("step-0", 5.0),
        ScheduleTimer("step-0", 14.0),
        ScheduleTimer("step-0", 52.0),
    ]
    assert state.workers[0].deadline == 52.0


def test_an_attempt_that_waits_after_its_deadline_is_interrupted_when_it_resumes() -> None:
    """The step timer fired while the attempt was starting its wait: it has no
    time left, so it is interrupted as soon as it goes on."""
    a0, h = A(), H()
    state, _ = feed(
        RunState.initial(timed_spec()),
        [
            RunStarted(a0, 0.0),
            WaitStarted(0, "w", (H,), now=6.0),
            TimerFired("step-0", 6.0),  # ignored: the attempt waits
        ],
    )
    assert state.waiting[0].budget == 0.0
    state, commands = reduce(state, EventSent(h, now=20.0))
    assert commands == [ResumeWorker(0, h, False), ScheduleTimer("step-0", 20.0)]
    _, commands = reduce(state, TimerFired("step-0", 20.0))
    assert commands == [CancelWorker(0)]


def test_a_retry_gets_a_whole_step_timeout() -> None:
    a0 = A()
    error = TimeoutError()
    state, _ = feed(
        RunState.initial(timed_spec()),
        [
            RunStarted(a0, 0.0),
            WaitStarted(0, "w", (H,), now=4.0),
            WaitAbandoned(0, now=8.0),  # 1 s left: due at 9
            StepFailed(0, error, retry_delay=1.0, now=9.0),
        ],
    )
    _, commands = reduce(state, TimerFired("retry-0", 10.0))
    assert commands == [
        StartWorker(1, "t", Delivery(0, a0, 2, error, 9.0, last_failed_at=9.0)),
        ScheduleTimer("step-1", 15.0),
    ]


def test_an_event_sent_to_one_step_is_not_kept_for_another_steps_waiter() -> None:
    """Rule 2: an event sent to one step goes only there.  A waiter of step "a"
    does not get an answer sent to step "b" while it waits, nor when the answer
    came first."""
    a0, b0, h = A(), B(), H()
    state, _ = started(one_slot(), a0, EventSent(b0), EventSent(h, step="b"))
    assert state.unclaimed == ((h, "b"),)
    state, commands = reduce(state, WaitStarted(0, "w", (H,)))
    assert commands == []
    assert 0 in state.waiting
    # Step "b"'s waiter gets it.
    state, commands = reduce(state, WaitStarted(1, "w", (H,)))
    assert commands == [ResumeWorker(1, h, False)]
    assert state.unclaimed == ()


def test_a_waiter_takes_the_oldest_unclaimed_event_meant_for_its_step() -> None:
    a0, b0 = A(), B()
    for_b, for_a, for_anyone = H(), H(), H()
    state, _ = started(
        one_slot(),
        a0,
        EventSent(b0),
        EventSent(for_b, step="b"),
        EventSent(for_a, step="a"),
        EventSent(for_anyone),
    )
    state, commands = reduce(state, WaitStarted(0, "w", (H,)))
    assert commands == [ResumeWorker(0, for_a, False)]
    state, commands = reduce(state, WaitStarted(0, "v", (H,)))
    assert commands == [ResumeWorker(0, for_anyone, False)]
    assert state.unclaimed == ((for_b, "b"),)


def test_woken_waits_go_on_in_the_order_they_were_woken() -> None:
    a0, a1, a2 = A(), A(), A()
    state, _ = started(
        one_slot(),
        a0,
        EventSent(a1),
        WaitStarted(0, "w", (H,)),  # worker 1 starts a1
        EventSent(a2),
        WaitStarted(1, "w", (H,)),  # worker 2 starts a2
        EventSent(H()),  # wakes worker 0 (oldest wait): queued, the slot is taken
        EventSent(H()),  # wakes worker 1: queued after worker 0
    )
    state, commands = reduce(state, StepCompleted(2))
    assert [c.worker_id for c in resumed(commands)] == [0]
    state, commands = reduce(state, StepCompleted(0))
    assert [c.worker_id for c in resumed(commands)] == [1]
