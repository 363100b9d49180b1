"""A long-lived host (a server) running many workflows at once, and the run's store."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    step,
)

pytestmark = pytest.mark.anyio


class Gated(Workflow):
    def __init__(self, gate: anyio.Event, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gate = gate


class Checkout(Gated):
    """Remembers the customer and the cart in the run's store."""

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("customer", ev.customer)
        await ctx.store.set("cart.items", [ev.item])
        await self.gate.wait()
        customer = await ctx.store.get("customer")
        cart = await ctx.store.get("cart")
        seen = await ctx.store.get("seen_by_other_flow", default=None)
        return StopEvent(result=(customer, cart, seen))


class Counter(Gated):
    """Counts in the run's store; every run must start from zero."""

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> StopEvent:
        before = await ctx.store.get("count", default=0)
        async with ctx.store.edit_state() as state:
            state["count"] = state.get("count", 0) + ev.n
            state["seen_by_other_flow"] = ev.n
        await self.gate.wait()
        after = await ctx.store.get("count")
        customer = await ctx.store.get("customer", default=None)
        return StopEvent(result=(before, after, customer))


async def test_fifty_concurrent_runs_in_one_runtime_keep_their_stores_apart() -> None:
    gate = anyio.Event()
    checkout = Checkout(gate, timeout=10)
    counter = Counter(gate, timeout=10)
    async with BasicRuntime() as runtime:
        handlers = []
        for i in range(50):
            if i % 2:
                handlers.append(checkout.run(customer=f"c{i}", item=f"item{i}", runtime=runtime))
            else:
                handlers.append(counter.run(n=i, runtime=runtime))
        # run() returned at once; every run is in flight and waiting on the gate
        await anyio.wait_all_tasks_blocked()
        assert not any(h.is_done() for h in handlers)
        gate.set()
        results = [await h for h in handlers]

    for i, result in enumerate(results):
        if i % 2:
            assert result == (f"c{i}", {"items": [f"item{i}"]}, None)
        else:
            assert result == (0, i, None)
    assert all(h.is_done() and h.exception() is None for h in handlers)


class Waiter(Workflow):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cleaned_up: list[str] = []
        self.release = anyio.Event()

    @step
    async def wait(self, ev: StartEvent) -> StopEvent:
        try:
            await self.release.wait()
        finally:
            self.cleaned_up.append(ev.name)
        return StopEvent(result=ev.name)


async def test_cancelling_one_hosted_run_leaves_the_others_running() -> None:
    flow = Waiter(timeout=10)
    async with BasicRuntime() as runtime:
        handlers = {name: flow.run(name=name, runtime=runtime) for name in ("a", "b", "c")}
        await anyio.wait_all_tasks_blocked()
        await handlers["b"].cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handlers["b"]
        assert flow.cleaned_up == ["b"]
        assert not handlers["a"].is_done()
        flow.release.set()
        assert await handlers["a"] == "a"
        assert await handlers["c"] == "c"

    assert sorted(flow.cleaned_up) == ["a", "b", "c"]


async def test_a_failing_hosted_run_does_not_take_the_others_down() -> None:
    class Boom(Exception):
        pass

    class Fragile(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            if ev.fail:
                raise Boom("bad input")
            await anyio.lowlevel.checkpoint()
            return StopEvent(result="ok")

    async with BasicRuntime() as runtime:
        bad = Fragile().run(fail=True, runtime=runtime)
        good = [Fragile().run(fail=False, runtime=runtime) for _ in range(5)]
        with pytest.raises(Boom):
            await bad
        assert [await h for h in good] == ["ok"] * 5
        assert isinstance(bad.exception(), Boom)


# -- the store: atomic edits from many workers, dotted paths, reentrancy -------------------


class Tick(Event):
    n: int


class Ticked(Event):
    n: int


class TallyFlow(Workflow):
    """Eight workers read-modify-write one counter, yielding in between."""

    @step
    async def fan_out(self, ev: StartEvent, ctx: Context) -> Tick | None:
        await ctx.store.set("expected", ev.ticks)
        for n in range(ev.ticks):
            ctx.send_event(Tick(n=n))
        return None

    @step(num_workers=8)
    async def bump(self, ev: Tick, ctx: Context) -> Ticked:
        async with ctx.store.edit_state() as state:
            current = state.get("count", 0)
            # give the other workers every chance to interleave
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            state["count"] = current + 1
            state.setdefault("seen", []).append(ev.n)
        return Ticked(n=ev.n)

    @step
    async def done(self, ev: Ticked, ctx: Context) -> StopEvent | None:
        expected = await ctx.store.get("expected")
        if ctx.collect_events(ev, [Ticked] * expected) is None:
            return None
        count = await ctx.store.get("count")
        seen = await ctx.store.get("seen")
        return StopEvent(result=(count, sorted(seen)))


async def test_edit_state_is_atomic_across_eight_workers() -> None:
    count, seen = await TallyFlow(timeout=10).run(ticks=200)

    assert count == 200
    assert seen == list(range(200))


class StoreFlow(Workflow):
    @step
    async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("user.profile.name", "ann")
        await ctx.store.set("user.profile.langs", ["en"])
        name = await ctx.store.get("user.profile.name")
        missing = await ctx.store.get("user.profile.age", default=-1)
        async with ctx.store.edit_state() as state:
            state["user"]["profile"]["langs"].append("fr")
            # the holder of edit_state may use the store again without deadlocking
            async with ctx.store.edit_state() as inner:
                inner["visits"] = 1
            await ctx.store.set("last", "edit")
        return StopEvent(
            result={
                "name": name,
                "missing": missing,
                "user": await ctx.store.get("user"),
                "visits": await ctx.store.get("visits"),
                "last": await ctx.store.get("last"),
            }
        )


async def test_store_dotted_paths_defaults_and_reentrant_edit_state() -> None:
    with anyio.fail_after(10):  # a deadlock must fail the test, not hang it
        result = await StoreFlow().run()

    assert result == {
        "name": "ann",
        "missing": -1,
        "user": {"profile": {"name": "ann", "langs": ["en", "fr"]}},
        "visits": 1,
        "last": "edit",
    }


class Ask(Workflow):
    @step
    async def start(self, ev: StartEvent, ctx: Context) -> InputRequiredEvent:
        await ctx.store.set("user", ev.user)
        return InputRequiredEvent(prefix=f"{ev.user}, approve?")

    @step
    async def answer(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        # An answer may arrive before `start` ran (steps are concurrent), so it
        # must not depend on what `start` stored.
        return StopEvent(result=(ev.user, ev.response))


async def test_hosted_runs_take_answers_sent_right_after_they_start() -> None:
    flow = Ask(timeout=10)
    async with BasicRuntime() as runtime:
        handlers = [flow.run(user=f"u{i}", runtime=runtime) for i in range(10)]
        for i, handler in enumerate(handlers):
            # sent before the run had any chance to ask
            handler.send_event(HumanResponseEvent(response=f"r{i}", user=f"u{i}"))
        results = [await h for h in handlers]

    assert results == [(f"u{i}", f"r{i}") for i in range(10)]


class Deposit(Event):
    pass


class Reset(Event):
    pass


class Settled(Event):
    who: str


class Ledger(Workflow):
    """One step edits the balance while another step of the same run overwrites it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.editing = anyio.Event()
        self.order: list[str] = []

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> Deposit | Reset | None:
        await ctx.store.set("balance", 10)
        ctx.send_event(Deposit())
        ctx.send_event(Reset())
        return None

    @step
    async def deposit(self, ev: Deposit, ctx: Context) -> Settled:
        async with ctx.store.edit_state() as state:
            balance = state["balance"]
            self.editing.set()
            # let every other task run as far as it can while the edit is open
            await anyio.wait_all_tasks_blocked()
            state["balance"] = balance + 5
            self.order.append("deposit")
        return Settled(who="deposit")

    @step
    async def reset(self, ev: Reset, ctx: Context) -> Settled:
        await self.editing.wait()
        await ctx.store.set("balance", 0)
        self.order.append("reset")
        return Settled(who="reset")

    @step
    async def settle(self, ev: Settled, ctx: Context) -> StopEvent | None:
        if ctx.collect_events(ev, [Settled, Settled]) is None:
            return None
        return StopEvent(result=await ctx.store.get("balance"))


async def test_store_set_waits_for_an_open_edit_of_another_step() -> None:
    flow = Ledger(timeout=10)

    balance = await flow.run()

    # the reset could not slip into the middle of the deposit's read-modify-write
    assert flow.order == ["deposit", "reset"]
    assert balance == 0
