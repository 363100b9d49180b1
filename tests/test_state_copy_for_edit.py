"""``copy_state_for_edit``: data copied, live handles shared."""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pydantic

from anyflow.state_store import DictState, copy_state_for_edit


class Agent(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)

    notes: list[str] = pydantic.Field(default_factory=list)
    client: Any = pydantic.Field(default=None, exclude=True)


@attrs.define
class Box:
    items: list[int] = attrs.Factory(list)
    lock: Any = None


def test_data_is_copied_and_declared_handles_are_shared() -> None:
    client = object()
    agent = Agent(notes=["a"], client=client)
    state = DictState(agent=agent, raw={"k": [1]})
    copied = copy_state_for_edit(state)
    assert type(copied) is DictState
    assert copied["agent"] is not agent
    assert copied["agent"].client is client
    copied["agent"].notes.append("b")
    copied["raw"]["k"].append(2)
    assert agent.notes == ["a"]
    assert state["raw"] == {"k": [1]}


def test_values_that_cannot_be_copied_are_shared_alone() -> None:
    lock = threading.Lock()
    box = Box(items=[1], lock=lock)
    copied = copy_state_for_edit(DictState(box=box, locks=[lock, [0]]))
    assert copied["box"].lock is lock
    assert copied["locks"][0] is lock
    copied["box"].items.append(2)
    assert box.items == [1]


def test_shared_objects_stay_shared_and_cycles_end() -> None:
    shared: list[Any] = [1]
    shared.append(shared)
    copied = copy_state_for_edit({"a": shared, "b": shared})
    assert copied["a"] is copied["b"]
    assert copied["a"] is not shared
    assert copied["a"][1] is copied["a"]
