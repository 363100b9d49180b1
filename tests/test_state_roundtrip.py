"""Every reducer state a run can reach survives JSON: saving what was read back
gives the same data (nothing is lost or changed on the way).  Ticks too, and
journals written before a tick gained a field still read."""

from __future__ import annotations

import json

import anyio
import pytest
from attrs import evolve as attrs_evolve
from hypothesis import given
from hypothesis import strategies as st

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import RunState
from anyflow._core.ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)
from anyflow.serialization import decode_state, decode_tick, encode_state, encode_tick

from .serde_flows import HalfCollected, Item, Part

SPEC = HalfCollected()._spec


@given(st.data())
def test_saved_states_read_back_to_the_same_data(data: st.DataObject) -> None:
    state = RunState.initial(SPEC)
    state, _ = reduce(state, RunStarted(StartEvent(), 0.0))
    now = 0.0
    for _ in range(data.draw(st.integers(0, 25), label="ticks")):
        now += 1.0
        workers = sorted(state.workers)
        waiting = sorted(state.waiting)
        options = [
            EventSent(Item(n=data.draw(st.integers(0, 9))), external=True, now=now),
            EventSent(HumanResponseEvent(response=data.draw(st.text(max_size=3))), now=now),
        ]
        if workers:
            worker = data.draw(st.sampled_from(workers))
            options += [
                StepCompleted(worker, data.draw(st.sampled_from([None, Part(n=1)])), now),
                StepFailed(worker, ValueError("x"), data.draw(st.sampled_from([None, 2.0])), now),
                WaitStarted(worker, "wait#1", (HumanResponseEvent,), (), None, 5.0, now),
                EventCollected(worker, "default", Part(n=worker), [Part] * 3, now),
            ]
        senders = workers + waiting
        if senders:
            # A step's own send, counted on its attempt (from a task of its own
            # while it waits).
            sender = data.draw(st.sampled_from(senders))
            options.append(EventSent(Item(n=9), now=now, worker_id=sender))
        if waiting:
            options.append(WaitAbandoned(data.draw(st.sampled_from(waiting)), now))
        if data.draw(st.booleans(), label="resume?"):
            # Its memos then remember what the interrupted attempts sent.
            options.append(RunResumed(now, recovered=data.draw(st.booleans())))
        if state.retries:
            options.append(TimerFired(data.draw(st.sampled_from(sorted(state.retries))), now))
        if data.draw(st.booleans(), label="cancel?") and not options:
            options.append(CancelRequested(now))
        tick = data.draw(st.sampled_from(options))
        try:
            state, _ = reduce(state, tick)
        except TickRejected:
            continue
        if state.status.finished:
            break
    saved = json.loads(json.dumps(encode_state(state)))
    again = encode_state(decode_state(saved, SPEC))
    assert again == saved


ticks = st.one_of(
    st.builds(RunStarted, st.builds(StartEvent, topic=st.text(max_size=3)), st.floats(0, 1e6)),
    st.builds(
        EventSent,
        st.builds(Item, n=st.integers()),
        st.none() | st.just("work"),
        st.booleans(),
        st.floats(0, 1e6),
        st.none() | st.integers(0, 99),
    ),
    st.builds(StepCompleted, st.integers(0, 99), st.none() | st.builds(Part, n=st.integers())),
    st.builds(
        StepFailed,
        st.integers(0, 99),
        st.builds(ValueError, st.text(max_size=5)),
        st.none() | st.floats(0, 60),
        st.floats(0, 1e6),
    ),
    st.builds(
        EventCollected,
        st.integers(0, 99),
        st.text(max_size=3),
        st.builds(Part, n=st.integers()),
        st.lists(st.just(Part), max_size=3),
    ),
    st.builds(
        WaitStarted,
        st.integers(0, 99),
        st.text(max_size=3),
        st.just((HumanResponseEvent,)),
        st.lists(st.tuples(st.text(max_size=3), st.integers()), max_size=2).map(tuple),
        st.none() | st.builds(HumanResponseEvent, response=st.text(max_size=3)),
        st.none() | st.floats(0.1, 60),
    ),
    st.builds(WaitAbandoned, st.integers(0, 99)),
    st.builds(CancelRequested, st.floats(0, 1e6)),
    st.builds(TimerFired, st.text(max_size=8), st.floats(0, 1e6)),
)


def _comparable(tick: object) -> object:
    # Exceptions come back as SavedError (type name and message): compare those.
    error = getattr(tick, "error", None)
    if error is None:
        return tick
    name = getattr(error, "type_name", type(error).__name__)
    return (attrs_evolve(tick, error=None), name, str(error))


@given(ticks)
def test_every_tick_round_trips_through_json(tick: object) -> None:
    data = json.loads(json.dumps(encode_tick(tick)))  # type: ignore[arg-type]
    back = decode_tick(data)
    if isinstance(tick, EventCollected):
        assert isinstance(back, EventCollected)
        assert list(back.expected) == list(tick.expected)
        tick = attrs_evolve(tick, expected=tuple(tick.expected))
        back = attrs_evolve(back, expected=tuple(back.expected))
    assert _comparable(back) == _comparable(tick)


def test_a_bad_tick_says_where() -> None:
    from anyflow import ContextSerdeError

    with pytest.raises(ContextSerdeError, match=r"^expected a tick at \$\[3\]"):
        decode_tick({"tick": "Nope"}, "$[3]")
    with pytest.raises(ContextSerdeError, match=r"^missing \$\.now$"):
        decode_tick({"tick": "CancelRequested"})
    with pytest.raises(ContextSerdeError, match=r"^\$\.worker_id has a str, which does not fit$"):
        decode_tick({"tick": "WaitAbandoned", "worker_id": "3", "now": 0.0})


def test_a_send_without_a_worker_is_written_as_before() -> None:
    """``EventSent.worker_id`` came after the first journals: a tick without it
    is written as it always was, and one with it round-trips."""
    data = encode_tick(EventSent(Item(n=1), external=True, now=2.0))
    assert set(data) == {"tick", "event", "step", "external", "now"}
    data = encode_tick(EventSent(Item(n=1), now=2.0, worker_id=3))
    assert data["worker_id"] == 3
    assert decode_tick(data) == EventSent(Item(n=1), now=2.0, worker_id=3)


def test_a_bad_worker_id_of_a_send_says_where() -> None:
    from anyflow import ContextSerdeError

    data = encode_tick(EventSent(Item(n=1), now=2.0, worker_id=3))
    with pytest.raises(ContextSerdeError, match=r"^\$\.worker_id has a str, which does not fit$"):
        decode_tick({**data, "worker_id": "3"})
    # A worker id is required where it always was.
    with pytest.raises(ContextSerdeError, match=r"^missing \$\.worker_id$"):
        decode_tick({"tick": "WaitAbandoned", "now": 0.0})


def test_a_journal_written_before_sends_had_a_worker_still_replays() -> None:
    """Records as anyflow wrote them before ``EventSent`` had a ``worker_id``:
    they read, and fold through the reducer into a run that goes on (its
    step's sends were not counted, so a re-run's sends are all delivered)."""
    start = encode_tick(RunStarted(StartEvent(), 0.0))
    item = encode_tick(EventSent(Item(n=1), now=1.0))
    assert "worker_id" not in item
    journal = [start, item, {**item, "now": 1.5}, encode_tick(StepCompleted(0, None, 2.0))]
    state = RunState.initial(SPEC)
    for record in journal:
        state, _ = reduce(state, decode_tick(json.loads(json.dumps(record))))
    assert state.next_event_id == 3  # the start event and two items
    state, _ = reduce(state, RunResumed(3.0, recovered=True))
    assert all(memo.sent is None for memo in state.memos.values())
    assert state.status.value == "running"


def test_the_sends_of_an_attempt_survive_a_saved_context() -> None:
    """What the interrupted attempts sent is saved: an executing worker's and a
    waiting one's count, a memo's (attempt, count), and the count of a woken
    wait queued for a slot, which goes to its memo (its worker does not outlive
    the save)."""
    state = RunState.initial(SPEC)
    ticks = [
        RunStarted(StartEvent(), 0.0),  # worker 0: fan
        EventSent(Item(n=1), now=1.0, worker_id=0),  # worker 1: work
        EventSent(Item(n=2), now=1.0, worker_id=0),  # worker 2: work
        EventSent(Part(n=0), now=1.0, worker_id=1),
        WaitStarted(1, "w", (HumanResponseEvent,), (), None, None, 1.0),
        EventSent(Part(n=0), now=1.0, worker_id=1),  # sent while it waits
    ]
    for tick in ticks:
        state, _ = reduce(state, tick)
    assert state.workers[0].sent == 2
    assert state.waiting[1].sent == 2
    saved = json.loads(json.dumps(encode_state(state)))
    executing = {w["step"]: w for w in saved["executing"]}
    assert executing["fan"]["sent"] == 2
    assert "sent" not in executing["work"]  # written only when it sent something
    assert saved["waiting"][0]["sent"] == 2
    back = decode_state(saved, SPEC)
    assert [w.sent for w in back.workers.values()] == [w.sent for w in state.workers.values()]
    assert [w.sent for w in back.waiting.values()] == [2]
    assert encode_state(back) == saved
    # Resumed: the memos hold the counts, and they are saved in turn.
    resumed, _ = reduce(back, RunResumed(2.0))
    sent = {key: memo.sent for key, memo in resumed.memos.items()}
    assert sent == {("fan", 0): (1, 2), ("work", 1): (1, 2)}
    memos = {m["step"]: m for m in encode_state(resumed)["memos"]}
    assert memos["fan"]["sent"] == [1, 2]
    assert decode_state(encode_state(resumed), SPEC).memos == resumed.memos


def test_a_woken_wait_queued_for_a_slot_saves_its_sends_in_its_memo() -> None:
    state = RunState.initial(SPEC)
    for tick in [
        RunStarted(StartEvent(), 0.0),  # worker 0: fan (one worker)
        WaitStarted(0, "w", (HumanResponseEvent,), (), None, None, 1.0),
        EventSent(StartEvent(), now=1.0),  # worker 1 takes fan's free slot
        EventSent(Item(n=1), now=1.0, worker_id=0),  # from worker 0's own task
        EventSent(HumanResponseEvent(response="y"), external=True, now=1.0),
    ]:
        state, _ = reduce(state, tick)
    (queued,) = list(state.lanes["fan"].queue)
    assert queued.sent == 1  # type: ignore[union-attr]
    saved = encode_state(state)
    (memo,) = [m for m in saved["memos"] if m["step"] == "fan" and m["event_id"] == 0]
    assert memo["sent"] == [1, 1]
    assert encode_state(decode_state(saved, SPEC)) == saved


def test_a_bad_count_of_sends_says_where() -> None:
    from anyflow import ContextSerdeError

    state = RunState.initial(SPEC)
    state, _ = reduce(state, RunStarted(StartEvent(), 0.0))
    state, _ = reduce(state, EventSent(Item(n=1), now=1.0, worker_id=0))
    saved = encode_state(state)
    saved["executing"][0]["sent"] = -1
    with pytest.raises(ContextSerdeError, match=r"^\$\.run\.executing\[0\]\.sent must be"):
        decode_state(saved, SPEC)


class Note(Event):
    n: int


class Noted(Event):
    n: int


class GoAhead(InputRequiredEvent):
    pass


class Notify(Workflow):
    """Sends two notes, asks, sends a third; ``join`` ends the run with all three."""

    def __init__(self) -> None:
        super().__init__()
        self.noted: list[int] = []

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> Note | None:  # sends Notes
        ctx.send_event(Note(n=1))
        ctx.send_event(Note(n=2))
        await ctx.wait_for_event(HumanResponseEvent, waiter_event=GoAhead(prefix="go?"))
        ctx.send_event(Note(n=3))
        return None

    @step
    async def note(self, ev: Note) -> Noted:
        self.noted.append(ev.n)
        return Noted(n=ev.n)

    @step
    async def join(self, ev: Noted, ctx: Context) -> StopEvent | None:
        notes = ctx.collect_events(ev, [Noted] * 3)
        return None if notes is None else StopEvent(result=sorted(e.n for e in notes))


@pytest.mark.anyio
async def test_a_run_resumed_from_its_saved_context_does_not_send_twice() -> None:
    """Saved while ``ask`` waits, the run resumes: ``ask`` runs again from its
    start, and its two notes, delivered before the save, are not sent again."""
    first = Notify()
    async with BasicRuntime() as runtime:
        handler = first.run(runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, GoAhead):
                await anyio.wait_all_tasks_blocked()
                data = json.loads(json.dumps(handler.ctx.to_dict()))
                await handler.cancel_run()
                break
    assert first.noted == [1, 2]
    assert data["run"]["waiting"][0]["sent"] == 2

    second = Notify()
    async with second.run(ctx=Context.from_dict(second, data)) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, GoAhead):
                handler.send_event(HumanResponseEvent(response="go"))
        assert await handler == [1, 2, 3]
    assert second.noted == [3]
