"""Saving a context with values JSON cannot hold: refused by default, pickled on request."""

from __future__ import annotations

import threading

import pytest

from anyflow import (
    Context,
    ContextSerdeError,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.context import JsonSerializer, PickleSerializer


def module_level_function() -> str:
    return "called"


class Counter(Workflow):
    @step
    async def count(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("n", await ctx.store.get("n", default=0) + 1)
        await ctx.store.set("fn", module_level_function)
        return StopEvent(result="done")


async def test_a_store_value_json_cannot_hold_is_refused_unless_pickled() -> None:
    wf = Counter()
    async with wf.run() as handler:
        pass
    with pytest.raises(
        ContextSerdeError, match=r"function value at \$\.store\.fn is not JSON-safe"
    ):
        handler.ctx.to_dict()
    data = handler.ctx.to_dict(serializer=PickleSerializer())
    assert data["store"]["n"] == 1  # what JSON holds stays JSON
    with pytest.raises(
        ContextSerdeError,
        match=r"^\$\.store\.fn holds a pickled value: pass serializer=PickleSerializer\(\)",
    ):
        Context.from_dict(wf, data)
    ctx = Context.from_dict(wf, data, serializer=PickleSerializer())
    assert (await ctx.store.get("fn"))() == "called"
    async with wf.run(ctx=ctx) as again:
        pass
    assert await again.ctx.store.get("n") == 2


class Lock:
    """Equal to any other Lock; holds a thread lock unless told not to."""

    def __init__(self, real: bool = True) -> None:
        self.lock = threading.Lock() if real else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lock)

    def __reduce__(self) -> tuple[type[Lock], tuple[bool]]:
        return (Lock, (False,))


class Keyed(HumanResponseEvent):
    key: object = None


class WaitsWithRequirement(Workflow):
    @step
    async def wait(self, ev: StartEvent, ctx: Context) -> StopEvent:
        got = await ctx.wait_for_event(
            Keyed, waiter_event=InputRequiredEvent(prefix="key?"), requirements={"key": Lock()}
        )
        return StopEvent(result=type(got.key).__name__)


async def test_a_run_whose_state_json_cannot_hold_is_pickled_whole_and_resumes() -> None:
    wf = WaitsWithRequirement(timeout=10)
    async with wf.run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                with pytest.raises(ContextSerdeError):
                    handler.ctx.to_dict()
                data = handler.ctx.to_dict(serializer=PickleSerializer())
                await handler.cancel_run()
    async with wf.run(ctx=Context.from_dict(wf, data, serializer=PickleSerializer())) as resumed:
        async for ev in resumed.stream_events():
            if isinstance(ev, InputRequiredEvent):
                resumed.send_event(Keyed(response="", key=Lock(real=False)))
    assert resumed.result() == "Lock"


def test_serializers_round_trip_events_and_plain_data_as_text() -> None:
    serializer = JsonSerializer()
    ev = StopEvent(result={"a": [1, 2]})
    text = serializer.serialize(ev)
    assert isinstance(text, str)
    assert serializer.deserialize(text) == ev
    with pytest.raises(ContextSerdeError, match=r"function value at \$ is not JSON-safe"):
        serializer.serialize(module_level_function)
    pickled = PickleSerializer().serialize(module_level_function)
    assert PickleSerializer().deserialize(pickled) is module_level_function
    with pytest.raises(ContextSerdeError, match=r"^\$ holds a pickled value"):
        serializer.deserialize(pickled)
