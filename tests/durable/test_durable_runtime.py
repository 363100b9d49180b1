"""DurableRuntime in one process: what is recorded, and what a later runtime on
the same store makes of it.  Leaving a runtime's block stops its runs without
ending them, which is how these tests stand for a process that went away (the
SIGKILL cases are in test_crash_matrix.py)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowHandler,
    step,
)
from anyflow.durable import DurableRuntime, MemoryStore, Owner
from anyflow.durable._store import lease_is_free
from anyflow.errors import (
    ContextSerdeError,
    DurabilityError,
    JournalCorruptError,
    RunLockedError,
    StoreUnavailableError,
    WorkflowChangedError,
    WorkflowRuntimeError,
)
from anyflow.serialization import SavedError

if TYPE_CHECKING:
    from anyflow._core.state import Worker

pytestmark = pytest.mark.anyio

CALLS: list[str] = []


class Order(StartEvent):
    amount: int


class Charged(Event):
    amount: int


class Shipped(Event):
    amount: int


class Progress(Event):
    step: str


class Shop(Workflow):
    """Charge, ask a human whether to ship, ship."""

    @step
    async def charge(self, ev: Order, ctx: Context) -> Charged:
        CALLS.append("charge")
        await ctx.store.set("charged", ev.amount)
        ctx.write_event_to_stream(Progress(step="charge"))
        return Charged(amount=ev.amount)

    @step
    async def ship(self, ev: Charged, ctx: Context) -> Shipped:
        CALLS.append("ship")
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ship it?")
        )
        CALLS.append(f"answer {answer.response}")
        return Shipped(amount=ev.amount)

    @step
    async def done(self, ev: Shipped, ctx: Context) -> StopEvent:
        CALLS.append("done")
        return StopEvent(result={"shipped": ev.amount, "charged": await ctx.store.get("charged")})


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


async def _until_waiting(runtime: DurableRuntime, run_id: str) -> None:
    """Follow the recorded stream until the question is recorded."""
    async for stored in runtime.events(run_id):
        if isinstance(stored.event, InputRequiredEvent):
            return


async def test_a_run_stopped_while_waiting_resumes_in_a_new_runtime_without_redoing_work() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        Shop().run(run_id="o1", runtime=runtime, amount=5)
        await _until_waiting(runtime, "o1")
    # The block ended: the run stopped without ending, and stays resumable.
    assert [r.status for r in await runtime.list_runs()] == ["running"]
    assert CALLS == ["charge", "ship"]

    async with DurableRuntime(store) as runtime:
        handler = Shop().run(run_id="o1", runtime=runtime)  # no fields: resume only
        seen = []
        async for ev in handler.stream_events():
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == {"shipped": 5, "charged": 5}
    # charge's result was recorded: it did not run again; ship was waiting, so
    # its attempt ran again, and did not ask again (the question is recorded once).
    assert CALLS == ["charge", "ship", "ship", "answer yes", "done"]
    assert [type(ev).__name__ for ev in seen] == [
        "Progress",
        "InputRequiredEvent",
        "StopEvent",
    ]
    [record] = await runtime.list_runs()
    assert (record.run_id, record.workflow, record.status) == (
        "o1",
        f"{__name__}:Shop",
        "completed",
    )
    assert record.created_at <= record.updated_at


async def test_a_finished_run_returns_its_recorded_outcome_without_running() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        async with Shop().run(run_id="o2", runtime=runtime, amount=7) as handler:
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    handler.send_event(HumanResponseEvent(response="ok"))
        calls = list(CALLS)
        again = Shop().run(run_id="o2", runtime=runtime, amount=999)
        assert await again == {"shipped": 7, "charged": 7}
        assert [type(ev).__name__ async for ev in again.stream_events()] == [
            "Progress",
            "InputRequiredEvent",
            "StopEvent",
        ]
    assert calls == CALLS


class Flaky(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def fail(self, ev: StartEvent) -> StopEvent:
        CALLS.append("fail")
        raise ValueError("the card was declined")


async def test_a_failed_run_is_recorded_and_its_error_comes_back_by_name() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        with pytest.raises(ValueError, match="declined"):
            await Flaky().run(run_id="f", runtime=runtime)
        with pytest.raises(SavedError, match="declined") as caught:
            await Flaky().run(run_id="f", runtime=runtime)
    assert caught.value.type_name == "ValueError"
    assert CALLS == ["fail", "fail"]
    assert [r.status for r in await runtime.list_runs()] == ["failed"]


async def test_events_resume_from_a_sequence_number_without_gaps_or_duplicates() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        async with Shop().run(run_id="o3", runtime=runtime, amount=1) as handler:
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    handler.send_event(HumanResponseEvent(response="ok"))
        everything = [(s.seq, type(s.event).__name__) async for s in runtime.events("o3")]
        assert everything == [(0, "Progress"), (1, "InputRequiredEvent"), (2, "StopEvent")]
        rest = [(s.seq, type(s.event).__name__) async for s in runtime.events("o3", after=0)]
        assert rest == everything[1:]
        assert [s async for s in runtime.events("o3", after=2)] == []
        with pytest.raises(DurabilityError, match="no run 'nope'"):
            await runtime.events("nope").__anext__()


async def test_a_reader_follows_a_live_run_to_its_end() -> None:
    async with DurableRuntime(MemoryStore()) as runtime:
        handler = Shop().run(run_id="live", runtime=runtime, amount=2)
        names = []
        async for stored in runtime.events("live"):
            names.append(type(stored.event).__name__)
            if isinstance(stored.event, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="go"))
        assert names == ["Progress", "InputRequiredEvent", "StopEvent"]
        assert await handler == {"shipped": 2, "charged": 2}


async def test_an_awaited_send_event_returns_once_the_event_is_recorded() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Shop().run(run_id="o4", runtime=runtime, amount=3)
        await _until_waiting(runtime, "o4")
        before = len(store._runs["o4"].ticks)
        await handler.send_event(HumanResponseEvent(response="yes"))
        recorded = [json.loads(t.partition(":")[2]) for t in store._runs["o4"].ticks.values()]
        sent = [t for t in recorded[before:] if t["tick"] == "EventSent" and t["external"]]
        assert len(sent) == 1
        assert await handler == {"shipped": 3, "charged": 3}


class ShopV2(Workflow):
    @step(num_workers=2)
    async def charge(self, ev: Order) -> Charged:
        return Charged(amount=ev.amount)

    @step
    async def finish(self, ev: Charged) -> StopEvent:
        return StopEvent(result=ev.amount)


async def test_resuming_with_a_changed_workflow_names_what_changed_and_changes_nothing() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        Shop().run(run_id="o5", runtime=runtime, amount=1)
        await _until_waiting(runtime, "o5")
    before = dict(store._runs["o5"].ticks)
    ShopV2.__qualname__ = "Shop"  # the same name, another step graph
    ShopV2.__module__ = Shop.__module__
    try:
        async with DurableRuntime(store) as runtime:
            with pytest.raises(WorkflowChangedError) as caught:
                await ShopV2().run(run_id="o5", runtime=runtime)
    finally:
        ShopV2.__qualname__ = "ShopV2"
    message = str(caught.value)
    assert "'o5'" in message
    assert "step 'ship' was removed" in message
    assert "step 'finish' was added" in message
    assert "step 'done' was removed" in message
    assert "num_workers=2 (was 1)" in message
    assert store._runs["o5"].ticks == before
    assert store._runs["o5"].owner is None  # the lease was given back


async def test_a_corrupt_journal_names_the_run_and_the_record_and_is_left_alone() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        Shop().run(run_id="o6", runtime=runtime, amount=1)
        await _until_waiting(runtime, "o6")
    row = store._runs["o6"]
    row.ticks[1] = row.ticks[1].replace('"worker_id":0', '"worker_id":9')
    damaged = dict(row.ticks)
    async with DurableRuntime(store) as runtime:
        with pytest.raises(JournalCorruptError, match=r"tick record 1 of run 'o6' is damaged"):
            await Shop().run(run_id="o6", runtime=runtime)
        del row.ticks[1]
        with pytest.raises(JournalCorruptError, match=r"tick record 1 of run 'o6' is missing"):
            await Shop().run(run_id="o6", runtime=runtime)
    assert row.ticks == {k: v for k, v in damaged.items() if k != 1}
    assert row.status == "running"
    assert row.owner is None


async def test_a_run_is_executed_by_one_runtime_at_a_time() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as first, DurableRuntime(store) as second:
        Shop().run(run_id="o7", runtime=first, amount=1)
        await _until_waiting(first, "o7")
        with pytest.raises(RunLockedError, match="already running in this runtime"):
            Shop().run(run_id="o7", runtime=first)
        with pytest.raises(RunLockedError, match=r"run 'o7' is being executed by"):
            await Shop().run(run_id="o7", runtime=second)
        assert CALLS == ["charge", "ship"]


async def test_a_new_run_without_fields_says_which_fields_to_pass() -> None:
    async with DurableRuntime(MemoryStore()) as runtime:
        with pytest.raises(DurabilityError, match=r"no run 'o8' is recorded.*pass the start"):
            await Shop().run(run_id="o8", runtime=runtime)
        assert await runtime.list_runs() == []


class Opaque(Event):
    payload: object


class Unrecordable(Workflow):
    @step
    async def make(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=object())


async def test_an_event_that_cannot_be_recorded_stops_the_run_with_a_clear_error() -> None:
    async with DurableRuntime(MemoryStore()) as runtime:
        with pytest.raises(DurabilityError, match=r"run 'u' cannot record StepCompleted.*JSON"):
            await Unrecordable().run(run_id="u", runtime=runtime)


class Echo(Workflow):
    @step
    async def echo(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.get("text"))


async def test_a_string_that_is_not_text_is_refused_when_the_run_starts() -> None:
    # A lone surrogate passes json.dumps but no store can hold it; it once
    # crashed the runtime's task group and every run in it, and then stopped
    # the run after it had started.  Now wf.run() refuses it, in the caller.
    async with DurableRuntime(MemoryStore()) as runtime:
        with pytest.raises(
            ContextSerdeError, match=r"cannot record the start event StartEvent.*surrogate"
        ):
            Echo().run(run_id="bad", runtime=runtime, text="\udfff")
        assert await runtime.get_run("bad") is None
        assert await Echo().run(run_id="good", runtime=runtime, text="\U0001f600") == "\U0001f600"


async def test_a_saved_paused_run_is_refused_by_a_runtime_that_keeps_runs() -> None:
    async with Shop().run(amount=1) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                saved = handler.ctx.to_dict()
                await handler.cancel_run()
    ctx = Context.from_dict(Shop(), saved)
    async with DurableRuntime(MemoryStore()) as runtime:
        with pytest.raises(WorkflowRuntimeError, match="resumes a run from its own record"):
            Shop().run(run_id="c", runtime=runtime, ctx=ctx)


class Slow(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=3600, maximum_attempts=2))
    async def once(self, ev: StartEvent) -> StopEvent:
        CALLS.append("once")
        raise RuntimeError("try again in an hour")


async def _retry_pending(handler: WorkflowHandler, store: MemoryStore) -> Worker:
    """The pending retry of the run, once its failure is recorded."""
    with anyio.fail_after(10):
        while True:
            state = handler.ctx._live_state()
            row = store._runs.get(handler.run_id)
            recorded = row is not None and any('"StepFailed"' in t for t in row.ticks.values())
            if state is not None and state.retries and recorded:
                [retry] = state.retries.values()
                return retry
            await anyio.lowlevel.checkpoint()


async def test_a_pending_retry_keeps_its_deadline_across_a_restart() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        before = await _retry_pending(Slow().run(run_id="s", runtime=runtime), store)
    async with DurableRuntime(store) as runtime:
        handler = Slow().run(run_id="s", runtime=runtime)
        after = await _retry_pending(handler, store)
        await handler.cancel_run()
    assert after.deadline == before.deadline
    assert after.delivery.attempt == 2
    assert CALLS == ["once"]  # not retried at once on resume
    assert [r.status for r in await runtime.list_runs()] == ["cancelled"]


async def test_the_caller_must_be_in_the_runtime_block() -> None:
    runtime = DurableRuntime(MemoryStore())
    with pytest.raises(RuntimeError, match="async with DurableRuntime"):
        Shop().run(run_id="x", runtime=runtime, amount=1)


class Patient(Workflow):
    @step
    async def wait(self, ev: StartEvent, ctx: Context) -> StopEvent:
        CALLS.append("wait")
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="?"), timeout=3600
        )
        return StopEvent(result=answer.response)


async def _waiter_deadline(handler: WorkflowHandler) -> float:
    with anyio.fail_after(10):
        while True:
            state = handler.ctx._live_state()
            if state is not None and state.waiting:
                [waiter] = state.waiting.values()
                assert waiter.deadline is not None
                return waiter.deadline
            await anyio.lowlevel.checkpoint()


async def test_a_wait_keeps_its_deadline_across_a_restart() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Patient().run(run_id="p", runtime=runtime)
        await _until_waiting(runtime, "p")
        before = await _waiter_deadline(handler)
    async with DurableRuntime(store) as runtime:
        handler = Patient().run(run_id="p", runtime=runtime)
        after = await _waiter_deadline(handler)
        await handler.send_event(HumanResponseEvent(response="late but in time"))
        assert await handler == "late but in time"
    assert after == before
    assert CALLS == ["wait", "wait"]


def test_a_reused_pid_does_not_hold_a_dead_process_s_runs() -> None:
    me = Owner.here()
    # The holder had this very pid, in a process that died (a restarted container).
    dead = Owner(me.host, me.pid, "old-runtime", process="old-process")
    assert lease_is_free(str(dead), time.time() + 60, me, time.time())
    # Another runtime of this same process is alive.
    sibling = Owner(me.host, me.pid, "other-runtime")
    assert not lease_is_free(str(sibling), time.time() + 60, me, time.time())
    assert Owner.parse(str(dead)) == dead
    assert Owner.parse("garbage") is None


async def test_a_run_whose_end_was_not_recorded_ends_on_resume_without_running() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        with pytest.raises(ValueError, match="declined"):
            await Flaky().run(run_id="e", runtime=runtime)
    # As if the process died after recording the last tick, before the end.
    row = store._runs["e"]
    row.status, row.outcome = "running", None
    del row.events[max(row.events)]
    calls = list(CALLS)
    async with DurableRuntime(store) as runtime:
        with pytest.raises(SavedError, match="declined"):
            await Flaky().run(run_id="e", runtime=runtime)
    assert calls == CALLS  # nothing ran again
    assert row.status == "failed"
    assert row.owner is None


async def test_a_new_run_is_recorded_with_its_start_event_once_recorded() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Shop().run(run_id="s", runtime=runtime, amount=4)
        await handler.wait_recorded()
        first = await store.read_ticks("s")
        # The block ends at once: whatever else happened, the start was recorded.
    assert first
    assert '"amount":4' in first[0][1]
    async with DurableRuntime(store) as runtime:
        handler = Shop().run(run_id="s", runtime=runtime)  # no fields: resume only
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == {"shipped": 4, "charged": 4}


class Once(Workflow):
    @step
    async def only(self, ev: StartEvent, ctx: Context) -> StopEvent:
        CALLS.append("only")
        ctx.write_event_to_stream(Progress(step="only"))
        return StopEvent(result="done")


class EndFails(MemoryStore):
    """Refuses the first write of a run's last batch with its end."""

    failed = False

    async def append_and_finish(self, *args: Any) -> None:
        if not self.failed:
            self.failed = True
            raise StoreUnavailableError("the disk is full")
        await super().append_and_finish(*args)


async def test_a_run_whose_last_batch_cannot_be_recorded_stops_with_the_store_error() -> None:
    store = EndFails()
    async with DurableRuntime(store) as runtime:
        with pytest.raises(StoreUnavailableError, match="the disk is full"):
            await Once().run(run_id="x", runtime=runtime)
        record = await runtime.get_run("x")
        assert record is not None
        assert record.status == "running"
        assert await store.read_events("x") == []
        # Once the store works, the run resumes (as the server resumes it).
        assert await Once().run(run_id="x", runtime=runtime) == "done"
        stream = [(s.seq, type(s.event).__name__) async for s in runtime.events("x")]
    # The step's result was not recorded: it ran again, and its events are recorded once.
    assert CALLS == ["only", "only"]
    assert stream == [(0, "Progress"), (1, "StopEvent")]


class CreateFails(MemoryStore):
    async def create(self, *args: Any) -> None:
        raise StoreUnavailableError("the disk is full")


async def test_a_run_that_cannot_be_created_is_not_recorded_and_wait_recorded_says_so() -> None:
    store = CreateFails()
    async with DurableRuntime(store) as runtime:
        handler = Once().run(run_id="n", runtime=runtime)
        with pytest.raises(
            StoreUnavailableError, match="run 'n' is not recorded: the disk is full"
        ):
            await handler.wait_recorded()
        with pytest.raises(StoreUnavailableError, match="the disk is full"):
            await handler
    assert await store.get_run("n") is None
    assert CALLS == []  # nothing ran: its start was not recorded


class CountedReads(MemoryStore):
    reads = 0

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        self.reads += 1
        return await super().read_events(run_id, after, limit)


async def test_the_events_of_a_run_that_ended_here_are_read_as_recorded_without_the_store() -> None:
    store = CountedReads()
    async with DurableRuntime(store) as runtime:
        assert await Once().run(run_id="k", runtime=runtime) == "done"
        events = await runtime.read_events("k")
        assert [(e.seq, type(e.event).__name__) for e in events] == [
            (0, "Progress"),
            (1, "StopEvent"),
        ]
        assert [e.encoded for e in events] == [e.encoded for e in await runtime.read_events("k")]
        assert [e.seq for e in await runtime.read_events("k", after=0)] == [1]
        assert [e.seq for e in await runtime.read_events("k", limit=1)] == [0]
        assert store.reads == 0
        await runtime.delete_run("k")
        assert await runtime.read_events("k") == []  # purged: the store says so
        assert store.reads == 1


async def test_the_record_of_a_run_executing_here_is_the_store_s() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Shop().run(run_id="r", runtime=runtime, amount=3)
        await handler.wait_recorded()
        assert await runtime.get_run("r") == await store.get_run("r")
        await _until_waiting(runtime, "r")  # more batches written since
        assert await runtime.get_run("r") == await store.get_run("r")
        await handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == {"shipped": 3, "charged": 3}
        record = await runtime.get_run("r")
        assert record == await store.get_run("r")
        assert record is not None
        assert record.status == "completed"
