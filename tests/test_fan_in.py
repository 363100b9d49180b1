"""Join steps: a step with several event parameters is called once one event
of each has arrived (llama-index-workflows' "collect mode").

Each test runs on asyncio and trio.  The reducer's rule is tested on its own in
``tests/core/test_reducer_joins.py`` and under random interleavings in
``tests/core/test_reducer_stateful.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    catch_error,
    step,
)
from anyflow._core.reducer import reduce
from anyflow._core.state import Resumption, RunState
from anyflow._core.ticks import EventSent, RunResumed, RunStarted, StepCompleted, StepFailed
from anyflow.decorators import StepOptionError
from anyflow.durable import DurableRuntime, SqliteStore
from anyflow.errors import WorkflowValidationError
from anyflow.resources import Resource
from anyflow.serialization import decode_state, encode_state
from anyflow.testing import Fault, WorkflowTestRunner, simulate, virtual_time

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Header(Event):
    value: str


class Body(Event):
    value: str


class Footer(Event):
    value: str


class LoudHeader(Header):
    pass


class Reply(HumanResponseEvent):
    pass


class SendsParts(Workflow):
    """Sends ``parts`` (a Header and a Body by default) for a subclass's join
    step to take: the scaffolding of most tests below."""

    parts: tuple[Event, ...] = (Header(value="h"), Body(value="b"))

    @step
    async def emit(self, ev: StartEvent, ctx: Context) -> Header | Body | None:
        for part in self.parts:
            ctx.send_event(part)
        return None


class Assemble(Workflow):
    """Sends its parts in an order that is not the join's parameter order."""

    @step
    async def emit(self, ev: StartEvent, ctx: Context) -> Header | Body | Footer | None:
        ctx.send_event(Footer(value="f"))
        ctx.send_event(Body(value="b"))
        ctx.send_event(Header(value="h"))
        return None

    @step
    async def assemble(self, h: Header, ctx: Context, b: Body, f: Footer) -> StopEvent:
        await ctx.store.set("seen", [type(e).__name__ for e in (h, b, f)])
        return StopEvent(result=h.value + b.value + f.value)


async def test_parameters_are_bound_by_type_whatever_the_order_of_arrival() -> None:
    wf = Assemble()
    async with wf.run() as handler:
        assert await handler == "hbf"
        assert await handler.ctx.store.get("seen") == ["Header", "Body", "Footer"]


async def test_the_join_is_called_once_per_set_not_once_per_event() -> None:
    result = await WorkflowTestRunner(Assemble()).run()
    assert result.result == "hbf"
    assert result.calls == {"emit": 1, "assemble": 1}


async def test_a_join_s_events_are_not_in_the_step_s_collect_events_buffer() -> None:
    class Both(SendsParts):
        @step
        async def assemble(self, ctx: Context, h: Header, b: Body) -> StopEvent:
            return StopEvent(result=ctx.collect_events(b, [Header, Body]))

    assert await Both().run() is None


class Pairs(Workflow):
    """Five headers: two pairs, in arrival order, and one left over."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pairs: list[tuple[str, str]] = []

    @step
    async def emit(self, ev: StartEvent, ctx: Context) -> Header | None:
        for value in "abcde":
            ctx.send_event(Header(value=value))
        return None

    @step
    async def pair(self, first: Header, second: Header) -> Body:
        self.pairs.append((first.value, second.value))
        return Body(value=first.value + second.value)

    @step
    async def finish(self, ev: Body, ctx: Context) -> StopEvent | None:
        done = ctx.collect_events(ev, [Body, Body])
        if done is None:
            return None
        return StopEvent(result=[b.value for b in done if isinstance(b, Body)])


async def test_same_type_parameters_bind_in_arrival_order_and_sets_repeat() -> None:
    wf = Pairs()
    async with wf.run() as handler:
        assert await handler == ["ab", "cd"]
    assert wf.pairs == [("a", "b"), ("c", "d")]


async def test_a_subclass_instance_fills_its_base_class_parameter() -> None:
    class Subclasses(SendsParts):
        parts = (LoudHeader(value="H"), Body(value="b"))

        @step(accept_event_subclasses=True)
        async def assemble(self, h: Header, b: Body) -> StopEvent:
            return StopEvent(result=f"{type(h).__name__}:{h.value}{b.value}")

    assert await Subclasses().run() == "LoudHeader:Hb"


async def test_a_failing_join_is_caught_with_the_event_that_completed_its_set() -> None:
    class Caught(SendsParts):
        @step
        async def assemble(self, h: Header, b: Body) -> StopEvent:
            raise RuntimeError(h.value + b.value)

        @catch_error(for_steps=["assemble"])
        async def recover(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent(result=(ev.step_name, ev.input_event, ev.exception_message))

    assert await Caught().run() == ("assemble", Body(value="b"), "hb")


async def test_a_retried_join_gets_the_same_set_again() -> None:
    calls: list[tuple[str, str]] = []

    class Flaky(SendsParts):
        parts = (Body(value="b"), Header(value="h"))

        @step(retry_policy=ConstantDelayRetryPolicy(delay=1.0, maximum_attempts=3))
        async def assemble(self, h: Header, b: Body, ctx: Context) -> StopEvent:
            calls.append((h.value, b.value))
            if ctx.retry_info().attempt < 3:
                raise RuntimeError("not yet")
            return StopEvent(result="ok")

    with virtual_time():
        assert await Flaky().run() == "ok"
    assert calls == [("h", "b")] * 3


async def test_a_join_may_wait_for_an_answer_and_keeps_its_events() -> None:
    class Asks(SendsParts):
        @step
        async def assemble(self, ctx: Context, h: Header, b: Body) -> StopEvent:
            reply = await ctx.wait_for_event(Reply, waiter_event=InputRequiredEvent(prefix="?"))
            return StopEvent(result=h.value + b.value + reply.response)

    async with Asks().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(Reply(response="!"))
        assert await handler == "hb!"


async def test_a_plain_def_join_runs_in_a_thread_with_its_events() -> None:
    class Threaded(SendsParts):
        parts = (Body(value="b"), Header(value="h"))

        @step
        def assemble(self, h: Header, b: Body, ctx: Context) -> StopEvent:
            ctx.write_event_to_stream(Footer(value="from a thread"))
            return StopEvent(result=h.value + b.value)

    async with Threaded().run() as handler:
        seen = [ev async for ev in handler.stream_events()]
        assert await handler == "hb"
    assert Footer(value="from a thread") in seen


def make_prefix() -> str:
    return ">"


async def test_a_join_takes_resources_and_positional_only_parameters() -> None:
    class WithResources(SendsParts):
        @step
        async def assemble(
            self,
            h: Header,
            /,
            b: Body,
            prefix: Annotated[str, Resource(make_prefix)],
        ) -> StopEvent:
            return StopEvent(result=prefix + h.value + b.value)

    assert await WithResources().run() == ">hb"


async def test_events_for_a_join_may_come_from_the_caller() -> None:
    class FromOutside(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Header:
            return Header(value="h")

        @step
        async def assemble(self, h: Header, r: Reply) -> StopEvent:
            return StopEvent(result=h.value + r.response)

    async with FromOutside().run() as handler:
        handler.send_event(Reply(response="r"))
        assert await handler == "hr"


class HalfJoined(Workflow):
    """Holds a Header in its join until the caller's Reply comes."""

    @step
    async def begin(self, ev: StartEvent, ctx: Context) -> Header | InputRequiredEvent:
        ctx.send_event(Header(value=ev.topic))
        return InputRequiredEvent(prefix="reply?")

    @step
    async def assemble(self, h: Header, r: Reply) -> StopEvent:
        return StopEvent(result=f"{h.value}:{r.response}")


async def test_a_saved_context_keeps_the_events_a_join_holds() -> None:
    async with BasicRuntime() as runtime:
        handler = HalfJoined().run(topic="owls", runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                await anyio.wait_all_tasks_blocked()
                data = json.loads(json.dumps(handler.ctx.to_dict()))
                await handler.cancel_run()
                break
    [held] = data["run"]["joins"]
    assert held["step"] == "assemble"
    assert [e["fields"]["value"] for e in held["events"]] == ["owls"]

    wf = HalfJoined()
    async with wf.run(ctx=Context.from_dict(wf, data)) as handler:
        handler.send_event(Reply(response="yes"))
        assert await handler == "owls:yes"


async def test_a_durable_run_stopped_mid_join_resumes_with_the_held_event(
    tmp_path: Path,
) -> None:
    started: list[str] = []

    class Durable(HalfJoined):
        @step
        async def begin(self, ev: StartEvent, ctx: Context) -> Header | InputRequiredEvent:
            started.append(ev.topic)
            ctx.send_event(Header(value=ev.topic))
            return InputRequiredEvent(prefix="reply?")

    db = tmp_path / "runs.db"
    async with DurableRuntime(SqliteStore(db)) as runtime:
        Durable().run(run_id="j1", runtime=runtime, topic="owls")
        async for stored in runtime.events("j1"):
            if isinstance(stored.event, InputRequiredEvent):
                break
    # The block ended: the run stopped holding the Header, and stays resumable.
    async with DurableRuntime(SqliteStore(db)) as runtime:
        handler = Durable().run(run_id="j1", runtime=runtime)
        await handler.send_event(Reply(response="yes"))
        assert await handler == "owls:yes"
    assert started == ["owls"]  # begin's result was recorded: it did not run again


class Job(Event):
    n: int


class Part(Event):
    n: int


class Race(Workflow):
    """Two workers finish in either order; the join pairs parts as they arrive."""

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Job | None:
        ctx.send_event(Job(n=1))
        ctx.send_event(Job(n=2))
        return None

    @step(num_workers=2)
    async def work(self, ev: Job, ctx: Context) -> Part:
        await ctx.store.set(f"worked {ev.n}", True)
        return Part(n=ev.n)

    @step
    async def pair(self, first: Part, second: Part) -> StopEvent:
        return StopEvent(result=(first.n, second.n))


async def test_simulation_explores_the_orders_a_join_sees_and_binds_each_event_once() -> None:
    results = set()
    for seed in range(12):
        simulation = await simulate(Race(), seed=seed)
        results.add(simulation.result)
    # Both arrival orders happen, and each is bound in arrival order.
    assert results == {(1, 2), (2, 1)}


async def test_a_crash_at_any_batch_neither_loses_nor_duplicates_a_joined_event() -> None:
    crashed = 0
    for nth in range(6):
        simulation = await simulate(Race(), seed=nth, faults=[Fault("crash", nth=nth)])
        assert sorted(simulation.result) == [1, 2]
        crashed += "crash" in simulation.trace
    assert crashed >= 3


class Triples(Workflow):
    @step
    async def emit(self, ev: StartEvent) -> Header | Body | None:
        return None

    @step(num_workers=2)
    async def assemble(self, h: Header, b: Body, again: Header) -> StopEvent:
        return StopEvent(result=None)


@given(st.data())
def test_held_events_and_sets_survive_a_saved_context(data: st.DataObject) -> None:
    """A state with events held in a join and sets queued, executing or waiting
    for a retry reads back from JSON as the same state."""
    spec = Triples()._spec
    state, _ = reduce(RunState.initial(spec), RunStarted(StartEvent(), 0.0))
    for now in range(data.draw(st.integers(0, 20), label="ticks")):
        joined = sorted(i for i, w in state.workers.items() if w.step == "assemble")
        kinds = ["header", "body", "resume"] + (["done", "fail"] if joined else [])
        kind = data.draw(st.sampled_from(kinds))
        if kind == "header":
            tick: Any = EventSent(Header(value=str(now)), now=float(now))
        elif kind == "body":
            tick = EventSent(Body(value=str(now)), now=float(now))
        elif kind == "resume":
            tick = RunResumed(float(now), recovered=data.draw(st.booleans()))
        elif kind == "done":
            tick = StepCompleted(data.draw(st.sampled_from(joined)), None, float(now))
        else:
            tick = StepFailed(data.draw(st.sampled_from(joined)), ValueError("x"), 1.0, now)
        state, _ = reduce(state, tick)
    saved = json.loads(json.dumps(encode_state(state)))
    read = decode_state(saved, spec)
    assert encode_state(read) == saved
    assert read.joins == state.joins

    # Errors come back as their type name and message: compare those.
    def plain(item: Any) -> Any:
        if isinstance(item, Resumption):
            return attrs.evolve(item, delivery=plain(item.delivery))
        error = item.last_error
        if error is not None:
            error = (getattr(error, "type_name", type(error).__name__), str(error))
        return attrs.evolve(item, last_error=error)

    # A retry whose timer fired waits in its lane with its last error.
    queued = [plain(item) for lane in state.lanes.values() for item in lane.queue]
    assert [plain(item) for lane in read.lanes.values() for item in lane.queue] == queued

    # Executing attempts and pending retries are saved too, with their sets.
    def sets(workers: Any) -> list[tuple[Any, ...]]:
        return [(w.delivery.event, w.delivery.attempt, w.delivery.bound) for w in workers]

    assert sets(read.workers.values()) == sets(state.workers.values())
    assert sets(read.retries.values()) == sets(state.retries.values())


# Signatures anyflow refuses, and what it says.


def test_a_join_parameter_with_a_union_is_refused_naming_it() -> None:
    with pytest.raises(WorkflowValidationError, match=r"single event type.*'b' is annotated"):

        class Bad(Workflow):
            @step
            async def assemble(self, h: Header, b: Body | Footer) -> StopEvent:
                return StopEvent(result=None)


def test_a_list_parameter_beside_other_event_parameters_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"list\[E\] parameter \(a fan-in\) must"):

        class Bad(Workflow):
            @step
            async def assemble(self, h: Header, parts: list[Body]) -> StopEvent:
                return StopEvent(result=None)


def test_a_catching_step_with_several_event_parameters_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"recover.*StepFailedEvent"):

        class Bad(Workflow):
            @catch_error
            async def recover(self, ev: StepFailedEvent, h: Header) -> StopEvent:
                return StopEvent(result=None)


async def test_a_list_parameter_is_read_but_a_run_is_refused_saying_what_to_do() -> None:
    class Fanned(Workflow):
        @step
        async def emit(self, ev: StartEvent) -> Header:
            return Header(value="h")

        @step
        async def gather(self, headers: list[Header | LoudHeader]) -> StopEvent:
            return StopEvent(result=len(headers))

    info = Fanned.steps()["gather"]
    assert info.collection == ("headers", (Header, LoudHeader))
    assert info.accepts == (Header, LoudHeader)
    with pytest.raises(WorkflowValidationError, match=r"collects list\[Header \| LoudHeader\]"):
        Fanned().run()


def test_accept_event_subclasses_takes_a_bool() -> None:
    with pytest.raises(StepOptionError, match=r"accept_event_subclasses must be True or False"):
        step(accept_event_subclasses="yes")  # type: ignore[call-overload]
