"""Steps talking to each other and to the caller through the Context."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    Context,
    ContextStateError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)

pytestmark = pytest.mark.anyio


class Item(Event):
    n: int


class Result(Event):
    n: int


class FanOut(Workflow):
    """send_event n items to a pool of workers, collect_events their results."""

    def __init__(self, workers_seen: list[int] | None = None) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
        await ctx.store.set("n", ev.n)
        for i in range(ev.n):
            ctx.send_event(Item(n=i))
        return None

    @step(num_workers=4)
    async def work(self, ev: Item) -> Result:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await anyio.wait_all_tasks_blocked()  # let the other workers start too
        self.active -= 1
        return Result(n=ev.n * 10)

    @step
    async def gather(self, ev: Result, ctx: Context) -> StopEvent | None:
        n = await ctx.store.get("n")
        results = ctx.collect_events(ev, [Result] * n)
        if results is None:
            return None
        return StopEvent(result=sorted(r.n for r in results))


async def test_fan_out_and_collect_with_a_worker_limit() -> None:
    wf = FanOut()
    assert await wf.run(n=20) == [i * 10 for i in range(20)]
    assert wf.peak == 4


class Question(InputRequiredEvent):
    pass


class HumanInTheLoop(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> Question:
        return Question(prefix="name? ")

    @step
    async def greet(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.response}")


async def test_human_in_the_loop_with_a_returned_input_required_event() -> None:
    async with HumanInTheLoop().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, Question):
                assert ev.prefix == "name? "
                await handler.send_event(HumanResponseEvent(response="ann"))
        assert await handler == "hello ann"


async def test_caller_sends_through_handler_ctx_and_targets_a_step() -> None:
    class Two(Event):
        pass

    seen: list[str] = []

    class Targeted(Workflow):
        @step
        async def start(self, ev: StartEvent) -> None:
            return None

        @step
        async def first(self, ev: HumanResponseEvent) -> None:
            seen.append("first")

        @step
        async def second(self, ev: HumanResponseEvent) -> StopEvent:
            seen.append("second")
            return StopEvent(result=len(seen))

    async with Targeted().run() as handler:
        handler.ctx.send_event(HumanResponseEvent(response=1), step="second")
        assert await handler == 1
    assert seen == ["second"]


async def test_unacceptable_events_are_refused_when_sent() -> None:
    class Nobody(Event):
        pass

    async with BasicRuntime() as runtime:
        handler = HumanInTheLoop().run(runtime=runtime)
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"^no step of HumanInTheLoop accepts Nobody; its steps accept: HumanResponseEvent, StartEvent \(a step.s ctx.wait_for_event takes any event type",
        ):
            handler.send_event(Nobody())
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"^Step nope does not exist: HumanInTheLoop has no step 'nope'; its steps are: "
            r"ask, greet$",
        ):
            handler.send_event(HumanResponseEvent(), step="nope")
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"^Step ask does not accept event of type <class 'anyflow\.events\.HumanResponseEvent'>: "
            r"step HumanInTheLoop\.ask does not accept HumanResponseEvent; it accepts: StartEvent$",
        ):
            handler.send_event(HumanResponseEvent(), step="ask")
        with pytest.raises(TypeError, match=r"^send_event takes an Event, not str$"):
            handler.send_event("hello")  # type: ignore[arg-type]
        handler.send_event(HumanResponseEvent(response="bo"))
        assert await handler == "hello bo"
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"^run '.*' has finished; HumanResponseEvent was not delivered$",
        ):
            handler.send_event(HumanResponseEvent(response="late"))


async def test_step_sending_an_event_nobody_accepts_fails_in_the_step() -> None:
    class Nobody(Event):
        pass

    class Sender(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            ctx.send_event(Nobody())
            return StopEvent()

    with pytest.raises(WorkflowRuntimeError, match=r"^no step of .*Sender accepts Nobody"):
        await Sender().run()


async def test_context_methods_in_the_wrong_phase() -> None:
    wf = HumanInTheLoop()
    ctx = Context(wf)
    with pytest.raises(
        ContextStateError,
        match=r"^send_event\(\) called before workflow started\. Call workflow\.run\(\) first\. "
        r"Context\.send_event\(\) cannot be used here: this context is not started .* handler\.send_event\(ev\)\.$",
    ):
        ctx.send_event(HumanResponseEvent())
    with pytest.raises(
        ContextStateError,
        match=r"^collect_events requires a running workflow\. Call workflow\.run\(\) first\. "
        r"Context\.collect_events\(\) cannot be used here: .*Call it from a @step method\.$",
    ):
        ctx.collect_events(HumanResponseEvent(), [HumanResponseEvent])
    with pytest.raises(
        ContextStateError,
        match=r"^retry_info requires a running workflow\. .* Context\.retry_info\(\) cannot be used here",
    ):
        ctx.retry_info()
    async with wf.run(ctx=ctx) as handler:
        with pytest.raises(
            ContextStateError,
            match=r"^write_event_to_stream is only available from within step functions\. "
            r"Context\.write_event_to_stream\(\) cannot be used here: this context is the caller's view of a run\. Only steps write",
        ):
            handler.ctx.write_event_to_stream(Item(n=1))
        with pytest.raises(
            ContextStateError,
            match=r"^Cannot start a new run while context is already running\. .*"
            r"This context belongs to run '.*', which is still running",
        ):
            wf.run(ctx=ctx)
        handler.send_event(HumanResponseEvent(response="x"))


async def test_store_is_prepared_before_read_after_and_carried_to_the_next_run() -> None:
    class Counter(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            count = await ctx.store.get("count", default=0)
            await ctx.store.set("count", count + 1)
            await ctx.store.set("user.name", "ann")
            return StopEvent(result=count + 1)

    wf = Counter()
    ctx = Context(wf)
    await ctx.store.set("count", 10)
    assert await wf.run(ctx=ctx) == 11
    assert await ctx.store.get("user.name") == "ann"
    assert await wf.run(ctx=ctx) == 12  # a finished run's context starts the next one
    with pytest.raises(KeyError, match=r"the run's store has no value at 'missing'"):
        await ctx.store.get("missing")


async def test_edit_state_is_atomic_across_concurrent_workers() -> None:
    class Tick(Event):
        pass

    class Increments(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Tick | None:
            for _ in range(50):
                ctx.send_event(Tick())
            return None

        @step(num_workers=8)
        async def bump(self, ev: Tick, ctx: Context) -> StopEvent | None:
            async with ctx.store.edit_state() as state:
                value = state.get("n", 0)
                await anyio.wait_all_tasks_blocked()  # every other worker tries to get in here
                state["n"] = value + 1
                # reentrant: the holder may read while editing
                assert await ctx.store.get("n") == value + 1
            return StopEvent(result=value + 1) if value + 1 == 50 else None

    assert await Increments().run() == 50


async def test_collect_events_keeps_extras_for_the_next_set() -> None:
    class Part(Event):
        n: int

    class Pairs(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Part | None:
            for i in range(5):
                ctx.send_event(Part(n=i))
            return None

        @step
        async def pair(self, ev: Part, ctx: Context) -> StopEvent | None:
            got = ctx.collect_events(ev, [Part, Part])
            if got is None:
                return None
            pairs = await ctx.store.get("pairs", default=[])
            pairs.append([p.n for p in got])
            await ctx.store.set("pairs", pairs)
            return StopEvent(result=pairs) if len(pairs) == 2 else None

    assert await Pairs().run() == [[0, 1], [2, 3]]
