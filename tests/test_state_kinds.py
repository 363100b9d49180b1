"""State the incumbent's way: pydantic models, ``DictState``, state inherited by
a subclassed workflow, and the store's answers where the incumbent has one."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pydantic
import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    step,
)
from anyflow.errors import StateKeyError, StateTypeError
from anyflow.state_store import DictState, InMemoryStateStore, StateStore

pytestmark = pytest.mark.anyio


class Profile(pydantic.BaseModel):
    name: str = "nobody"
    tags: list[str] = pydantic.Field(default_factory=list)


class Counter(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(validate_assignment=True)

    count: int = 0
    profile: Profile = pydantic.Field(default_factory=Profile)


class Tick(Event):
    pass


class Counting(Workflow):
    @step(num_workers=4)
    async def fan(self, ev: StartEvent, ctx: Context[Counter]) -> Tick | None:
        for _ in range(3):
            ctx.send_event(Tick())
        return None

    @step(num_workers=3)
    async def tick(self, ev: Tick, ctx: Context[Counter]) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            state.count += 1
            state.profile.tags.append(f"t{state.count}")
            done = state.count == 3
        if done:
            await ctx.store.set("profile.name", "ann")
            return StopEvent(result=await ctx.store.get_state())
        return None


async def test_a_pydantic_model_is_the_state_of_a_run() -> None:
    assert Counting.state_type is Counter
    state = await Counting().run()
    assert isinstance(state, Counter)
    assert state == Counter(count=3, profile=Profile(name="ann", tags=["t1", "t2", "t3"]))


async def test_pydantic_paths_validation_and_missing_values() -> None:
    store = StateStore(Counter())
    await store.set("profile.name", "bo")
    assert await store.get("profile.name") == "bo"
    assert await store.get("profile.tags") == []
    with pytest.raises(pydantic.ValidationError):
        await store.set("count", "not a number")  # the model validates assignments
    with pytest.raises(
        AttributeError, match=r"^Counter has no field 'cuont' .*fields are: count, profile$"
    ):
        await store.set("cuont", 1)
    # A value that is not there: the incumbent's ValueError, anyflow's KeyError.
    with pytest.raises(ValueError, match=r"no value at 'profile\.age'"):
        await store.get("profile.age")
    with pytest.raises(KeyError):
        await store.get("nothing")
    assert await store.get("profile.age", default=None) is None
    whole = await store.get("")  # the empty path: the state itself
    assert isinstance(whole, Counter)
    assert whole.profile.name == "bo"


async def test_set_state_merges_a_parent_model_and_refuses_an_unrelated_one() -> None:
    class Base(pydantic.BaseModel):
        base: str = "b"

    class Child(Base):
        child: int = 0

    class Unrelated(pydantic.BaseModel):
        x: int = 0

    store = StateStore(Child(base="b0", child=7))
    await store.set_state(Base(base="b1"))
    assert await store.get_state() == Child(base="b1", child=7)
    with pytest.raises(
        StateTypeError,
        match=r"^State must be of type .*Child \(this run's state type\) or, for a pydantic "
        r"state, a parent type; set_state\(\) got a .*Unrelated$",
    ):
        await store.set_state(Unrelated())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be of type"):
        await store.set_state(Unrelated())  # type: ignore[arg-type]
    await store.clear()
    assert await store.get_state() == Child()


def test_a_pydantic_state_needs_defaults_and_must_not_be_frozen() -> None:
    class NoDefault(pydantic.BaseModel):
        n: int

    class Frozen(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(frozen=True)
        n: int = 0

    with pytest.raises(
        WorkflowValidationError,
        match=r"takes Context\[.*NoDefault\]: give every field of .*NoDefault a default .*: n has none",
    ):

        class A(Workflow):
            @step
            async def go(self, ev: StartEvent, ctx: Context[NoDefault]) -> StopEvent:
                return StopEvent()

    with pytest.raises(
        WorkflowValidationError, match=r"Frozen is frozen, but steps change the state"
    ):

        class B(Workflow):
            @step
            async def go(self, ev: StartEvent, ctx: Context[Frozen]) -> StopEvent:
                return StopEvent()


async def test_pydantic_state_survives_to_dict_and_from_dict() -> None:
    async with Counting().run() as handler:
        await handler
    saved = handler.ctx.to_dict()
    assert saved["store"] == {"count": 3, "profile": {"name": "ann", "tags": ["t1", "t2", "t3"]}}
    ctx = Context.from_dict(Counting(), saved)
    state = await ctx.store.get_state()
    assert isinstance(state, Counter)
    assert state.profile == Profile(name="ann", tags=["t1", "t2", "t3"])


async def test_the_untyped_state_is_a_dict_state() -> None:
    class Plain(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            await ctx.store.set("user", {"name": "ann"})
            state = await ctx.store.get_state()
            return StopEvent(result=state)

    state = await Plain().run()
    assert isinstance(state, DictState)
    assert state == {"user": {"name": "ann"}}
    assert state.user == state["user"] == {"name": "ann"}
    state.extra = 1
    assert state["extra"] == 1
    with pytest.raises(
        AttributeError, match=r"^this DictState has no key 'nope' \(its keys: user, extra\)$"
    ):
        _ = state.nope


async def test_context_of_dict_state_is_the_untyped_store() -> None:
    class Typed(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context[DictState]) -> StopEvent:
            async with ctx.store.edit_state() as state:
                state.n = state.get("n", 0) + 1
            return StopEvent(result=await ctx.store.get("n"))

    assert Typed.state_type is None
    assert await Typed().run() == 1


async def test_a_dict_state_subclass_is_kept_through_a_save() -> None:
    class Notes(DictState):
        pass

    class Noting(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context[Notes]) -> StopEvent:
            await ctx.store.set("a.b", 1)
            return StopEvent(result=await ctx.store.get_state())

    state = await Noting().run()
    assert type(state) is Notes
    assert state.a == {"b": 1}
    ctx = Context.from_dict(
        Noting(),
        {
            "version": 1,
            "workflow": f"{__name__}:{Noting.__qualname__}",
            "store": {"a": 1},
            "run": None,
        },
    )
    restored = await ctx.store.get_state()
    assert type(restored) is Notes
    assert restored == {"a": 1}


@attrs.define
class Base:
    base: str = "unset"


@attrs.define
class Child(Base):
    child: str = "unset"


class BaseFlow(Workflow):
    @step
    async def start(self, ev: StartEvent, ctx: Context[Base]) -> Tick:
        await ctx.store.set("base", "from base")
        return Tick()

    @step
    async def finish(self, ev: Tick, ctx: Context[Base]) -> StopEvent:
        return StopEvent(result=await ctx.store.get_state())


class SameState(BaseFlow):
    """No Context[...] of its own: the parent's state class."""


class ChildState(BaseFlow):
    @step
    async def finish(self, ev: Tick, ctx: Context[Child]) -> StopEvent:
        await ctx.store.set("child", "from child")
        return StopEvent(result=await ctx.store.get_state())


async def test_a_subclassed_workflow_inherits_or_refines_the_state_class() -> None:
    assert SameState.state_type is Base
    assert await SameState().run() == Base(base="from base")
    # A step written for the parent class shares the subclass's state.
    assert ChildState.state_type is Child
    assert await ChildState().run() == Child(base="from base", child="from child")


async def test_unrelated_state_classes_fail_when_the_run_starts() -> None:
    class Other(pydantic.BaseModel):
        x: int = 0

    class Mixed(BaseFlow):
        @step
        async def finish(self, ev: Tick, ctx: Context[Other]) -> StopEvent:
            return StopEvent()

    wf = Mixed()  # the class and the instance are made, as with the incumbent
    with pytest.raises(StateTypeError, match=r"not in a compatible inheritance hierarchy"):
        await wf.run()


async def test_in_memory_state_store_is_the_store() -> None:
    store = InMemoryStateStore(DictState())
    await store.set("user.profile.name", "Ada")
    assert await store.get("user.profile.name") == "Ada"
    assert store.state_type is None
    assert InMemoryStateStore is StateStore


async def test_paths_go_through_lists_and_plain_objects() -> None:
    class Box:
        def __init__(self) -> None:
            self.inside = {"k": "v"}

    store = StateStore()
    await store.set("items", [{"n": 1}, {"n": 2}])
    await store.set("box", Box())
    assert await store.get("items.1.n") == 2
    await store.set("items.0.n", 5)
    assert await store.get("items.0") == {"n": 5}
    assert await store.get("box.inside.k") == "v"
    assert await store.get("items.9", default="none") == "none"
    with pytest.raises(StateKeyError, match=r"^the run's store has no value at 'items\.9'"):
        await store.get("items.9")


def test_anyflow_does_not_import_pydantic() -> None:
    code = (
        "import sys, anyflow, anyflow.resource, anyflow.state_store\n"
        "assert 'pydantic' not in sys.modules, 'anyflow imported pydantic'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_clear_resets_to_the_current_class_set_state_chose() -> None:
    class Parent(pydantic.BaseModel):
        a: int = 0

    class Kid(Parent):
        b: int = 0

    store = StateStore(Parent())
    await store.set_state(Kid(a=1, b=7))
    await store.clear()
    assert await store.get_state() == Kid()
    assert type(await store.get_state()) is Kid


async def test_restore_puts_back_a_recorded_state_without_counting_a_change() -> None:
    untyped = StateStore()
    await untyped.set("a", 1)
    version = untyped.version
    recorded = {"b": 2}
    untyped.restore(recorded)
    assert untyped.version == version
    state = await untyped.get_state()
    assert state == {"b": 2}
    assert type(state) is DictState
    recorded["b"] = 3  # copied, as set_state copies
    assert await untyped.get("b") == 2

    typed = StateStore(Counter())
    snapshot = Counter(count=5)
    typed.restore(snapshot)
    assert typed.version == 0
    assert await typed.get("count") == 5

    with pytest.raises(StateTypeError, match=r"restore\(\) puts back a recorded Counter"):
        typed.restore({"count": 5})  # type: ignore[arg-type]
    with pytest.raises(StateTypeError, match="not a Counter"):
        untyped.restore(Counter())  # type: ignore[arg-type]
    assert await typed.get("count") == 5


def test_the_incumbents_state_payload_codecs_are_refused_with_the_way_to_do_it() -> None:
    from anyflow.context.state_store import decode_state, deserialize_state_from_dict, encode_state

    for call in (
        lambda: encode_state(DictState()),
        lambda: decode_state({"_data": {}}),
        lambda: deserialize_state_from_dict({}, None, state_type=DictState),
    ):
        with pytest.raises(
            ValueError,
            match=r"\(\) reads or writes llama-index-workflows' state payloads.*Context\.from_dict",
        ):
            call()


# The example of docs/state.md (its block is an excerpt of this).
class Visits(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(validate_assignment=True)
    count: int = 0
    names: list[str] = pydantic.Field(default_factory=list)


class Guestbook(Workflow):
    @step
    async def sign(self, ev: StartEvent, ctx: Context[Visits]) -> StopEvent:
        await ctx.store.set("count", 1)
        return StopEvent(result=await ctx.store.get_state())


async def test_the_docs_pydantic_example() -> None:
    assert await Guestbook().run() == Visits(count=1)
    with pytest.raises(pydantic.ValidationError):
        await StateStore(Visits()).set("count", "many")


class Ledger(pydantic.BaseModel):
    entries: list[str] = pydantic.Field(default_factory=list)


class Booking(Workflow):
    @step
    async def book(self, ev: StartEvent, ctx: Context[Ledger]) -> Tick:
        await ctx.store.set("entries", ["booked"])
        return Tick()

    @step
    async def confirm(self, ev: Tick, ctx: Context[Ledger]) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="confirm?")
        )
        async with ctx.store.edit_state() as state:
            state.entries.append(answer.response)
        return StopEvent(result=await ctx.store.get_state())


async def test_a_durable_run_resumes_with_its_pydantic_state() -> None:
    from anyflow.durable import DurableRuntime, MemoryStore

    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        Booking().run(run_id="b1", runtime=runtime)
        async for stored in runtime.events("b1"):
            if isinstance(stored.event, InputRequiredEvent):
                break
    async with DurableRuntime(store) as runtime:
        handler = Booking().run(run_id="b1", runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="yes"))
        state = await handler
    assert state == Ledger(entries=["booked", "yes"])
