"""Typed state: ``ctx: Context[MyState]`` with an attrs class as the run's store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from anyflow import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    step,
)
from anyflow.context import StateStore
from anyflow.errors import StateTypeError

pytestmark = pytest.mark.anyio


@attrs.define
class User:
    name: str = "nobody"
    tags: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class Counter:
    count: int = 0
    user: User = attrs.Factory(User)
    seen: list[int] = attrs.Factory(list)


class Tick(Event):
    n: int


class Counting(Workflow):
    @step
    async def fan(self, ev: StartEvent, ctx: Context[Counter]) -> Tick | None:
        for i in range(ev.n):
            ctx.send_event(Tick(n=i))
        return None

    @step(num_workers=8)
    async def bump(self, ev: Tick, ctx: Context[Counter]) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            value = state.count
            await anyio.wait_all_tasks_blocked()  # every other worker tries to get in here
            state.count = value + 1
            state.seen.append(ev.n)
            # reentrant: the holder may read and write through paths while editing
            assert await ctx.store.get("count") == value + 1
            await ctx.store.set("user.name", f"bumped {value + 1}")
        if value + 1 == 40:
            return StopEvent(result=await ctx.store.get_state())
        return None


async def test_state_type_is_read_from_the_steps_annotations() -> None:
    assert Counting.state_type is Counter
    assert Counting().state_type is Counter
    store = Context(Counting()).store
    assert store.state_type is Counter
    assert await store.get_state() == Counter()

    class Untyped(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            return StopEvent()

    assert Untyped.state_type is None
    assert Context(Untyped()).store.state_type is None


async def test_concurrent_edit_state_on_typed_state_is_atomic() -> None:
    state = await Counting().run(n=40)
    assert isinstance(state, Counter)
    assert state.count == 40
    assert sorted(state.seen) == list(range(40))
    assert state.user.name == "bumped 40"


async def test_get_and_set_through_attrs_instances_and_dicts() -> None:
    class Paths(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context[Counter]) -> StopEvent:
            store = ctx.store
            assert await store.get("count") == 0
            await store.set("count", 3)
            await store.set("user.name", "ann")
            await store.set("user.tags.team.lead", True)  # creates the dict "team"
            return StopEvent(
                result=(
                    await store.get("count"),
                    await store.get("user.name"),
                    await store.get("user.tags.team"),
                    await store.get("user.tags.missing", default="dflt"),
                )
            )

    wf = Paths()
    async with wf.run() as handler:
        assert await handler == (3, "ann", {"lead": True}, "dflt")
    # the caller reads the finished run's state
    state = await handler.ctx.store.get_state()
    assert state == Counter(count=3, user=User(name="ann", tags={"team": {"lead": True}}))
    assert handler.ctx.store.to_dict() == {
        "count": 3,
        "user": {"name": "ann", "tags": {"team": {"lead": True}}},
        "seen": [],
    }


async def test_a_path_that_is_not_a_field_names_the_class_and_its_fields() -> None:
    store = Context(Counting()).store
    with pytest.raises(
        AttributeError,
        match=r"^Counter has no field 'cuont' \(in the store path 'cuont'\); its fields are: count, user, seen$",
    ):
        await store.set("cuont", 1)
    with pytest.raises(
        AttributeError,
        match=r"^User has no field 'nmae' \(in the store path 'user\.nmae'\); its fields are: name, tags$",
    ):
        await store.set("user.nmae", "ann")
    # a misspelt field is an error even with a default: a field always has a value
    with pytest.raises(AttributeError, match=r"^Counter has no field 'cuont'"):
        await store.get("cuont", default=0)
    with pytest.raises(
        TypeError,
        match=r"^cannot set 'count\.x': the value at 'count' is a int, not a dict or an attrs instance$",
    ):
        await store.set("count.x", 1)
    with pytest.raises(KeyError, match=r"the run's store has no value at 'user\.tags\.nope'"):
        await store.get("user.tags.nope")
    assert await store.get_state() == Counter()  # nothing changed


async def test_get_state_is_a_copy_and_set_state_replaces() -> None:
    store = Context(Counting()).store
    snapshot = await store.get_state()
    snapshot.count = 99
    assert await store.get("count") == 0
    await store.set_state(Counter(count=5))
    assert await store.get("count") == 5
    with pytest.raises(
        TypeError,
        match=r"^State must be of type Counter \(this run's state type\); set_state\(\) got a dict$",
    ):
        await store.set_state({"count": 1})  # type: ignore[arg-type]
    await store.set("user.name", "bo")
    await store.clear()
    assert await store.get_state() == Counter()


async def test_prepared_typed_state_is_carried_into_the_run_and_to_the_next() -> None:
    class Carry(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context[Counter]) -> StopEvent:
            async with ctx.store.edit_state() as state:
                state.count += 1
                return StopEvent(result=state.count)

    wf = Carry()
    ctx: Context[Counter] = Context(wf)
    await ctx.store.set("count", 10)
    assert await wf.run(ctx=ctx) == 11
    assert await wf.run(ctx=ctx) == 12
    assert (await ctx.store.get_state()).count == 12


async def test_a_bare_context_in_a_typed_workflow_sees_the_typed_state() -> None:
    class Mixed(Workflow):
        @step
        async def first(self, ev: StartEvent, ctx: Context[Counter]) -> Tick:
            await ctx.store.set("count", 7)
            return Tick(n=1)

        @step
        async def second(self, ev: Tick, ctx: Context) -> StopEvent:
            state = await ctx.store.get_state()
            return StopEvent(result=type(state).__name__ + f":{state.count}")

    assert Mixed.state_type is Counter
    assert await Mixed().run() == "Counter:7"


async def test_a_subclass_inherits_the_state_type() -> None:
    class Child(Counting):
        pass

    assert Child.state_type is Counter
    assert (await Child().run(n=40)).count == 40


async def test_the_untyped_store_has_the_same_accessors() -> None:
    store: StateStore[dict[str, Any]] = StateStore()
    await store.set("a.b", 1)
    assert await store.get_state() == {"a": {"b": 1}}
    await store.set_state({"x": 2})
    assert store.to_dict() == {"x": 2}
    with pytest.raises(TypeError, match=r"^State must be of type dict "):
        await store.set_state(Counter())  # type: ignore[arg-type]
    async with store.edit_state() as state:
        state["y"] = 3
    assert await store.get("y") == 3
    await store.clear()
    assert await store.get_state() == {}


def test_state_fields_without_defaults_are_refused_when_the_class_is_defined() -> None:
    @attrs.define
    class NoDefaults:
        count: int
        name: str
        ok: int = 0

    with pytest.raises(
        WorkflowValidationError,
        match=r"^step .*Bad\.go takes Context\[.*NoDefaults\]: give every field of .*NoDefaults a default \(each run starts from .*NoDefaults\(\)\): count, name have none$",
    ):

        class Bad(Workflow):
            @step
            async def go(self, ev: StartEvent, ctx: Context[NoDefaults]) -> StopEvent:
                return StopEvent()


def test_state_types_that_are_not_mutable_attrs_classes_are_refused() -> None:
    class Plain:
        count = 0

    with pytest.raises(
        WorkflowValidationError,
        match=r"^step .*BadPlain\.go takes Context\[.*Plain\]: .*Plain is not an attrs class",
    ):

        class BadPlain(Workflow):
            @step
            async def go(self, ev: StartEvent, ctx: Context[Plain]) -> StopEvent:
                return StopEvent()

    @attrs.frozen
    class Frozen:
        count: int = 0

    if getattr(attrs, "inspect", None) is not None:
        with pytest.raises(WorkflowValidationError, match=r"Frozen is frozen, but steps change"):

            class BadFrozen(Workflow):
                @step
                async def go(self, ev: StartEvent, ctx: Context[Frozen]) -> StopEvent:
                    return StopEvent()


def test_dict_and_any_state_mean_untyped() -> None:
    class Loose(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context[dict[str, Any]]) -> Tick:
            return Tick(n=1)

        @step
        async def end(self, ev: Tick, ctx: Context[Any]) -> StopEvent:
            return StopEvent()

    assert Loose.state_type is None


def test_steps_disagreeing_on_the_state_type_are_refused_when_a_context_is_built() -> None:
    @attrs.define
    class Other:
        x: int = 0

    # llama-index-workflows raises this when a run starts, so a module defining
    # such a class still imports; the first context (every run builds one) fails.
    class Split(Workflow):
        @step
        async def first(self, ev: StartEvent, ctx: Context[Counter]) -> Tick:
            return Tick(n=1)

        @step
        async def second(self, ev: Tick, ctx: Context[Other]) -> StopEvent:
            return StopEvent()

    wf = Split()
    with pytest.raises(
        StateTypeError,
        match=re.escape(
            "steps of test_steps_disagreeing_on_the_state_type_are_refused_when_a_context_is_"
            "built.<locals>.Split disagree on the state type: first takes Context[Counter] and "
            "second takes Context[test_steps_disagreeing_on_the_state_type_are_refused_when_a_"
            "context_is_built.<locals>.Other], which are not in a compatible inheritance hierarchy"
        ),
    ):
        Context(wf)
    with pytest.raises(ValueError, match="not in a compatible inheritance hierarchy"):
        wf.run()


async def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_doc_example(Path(__file__).parent.parent / "docs" / "state.md")
    await namespace["main"]()
    assert capsys.readouterr().out == "visits: 3, last: carol\n"


def run_doc_example(path: Path) -> dict[str, Any]:
    """Execute the first ``python`` block of a doc page (not as __main__)."""
    text = path.read_text()
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"{path} has no python example"
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    exec(compile(match.group(1), str(path), "exec"), namespace)
    return namespace
