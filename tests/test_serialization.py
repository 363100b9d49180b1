"""Pause, save, resume: ctx.to_dict() and Context.from_dict()."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyflow import (
    BasicRuntime,
    Context,
    ContextSerdeError,
    Event,
    HumanResponseEvent,
    StartEvent,
    StopEvent,
)
from anyflow.serialization import decode_event, encode_event

from .serde_flows import Approve, HalfCollected, Question

ROOT = Path(__file__).parent.parent


async def _pause_at_second_question() -> dict[str, Any]:
    """Run Approve until it asks "ok?", save, and stop the run."""
    async with BasicRuntime() as runtime:
        handler = Approve().run(topic="owls", runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, Question) and ev.prefix == "name?":
                handler.send_event(HumanResponseEvent(response="ann"))
            elif isinstance(ev, Question):
                await anyio.wait_all_tasks_blocked()
                data = handler.ctx.to_dict()
                await handler.cancel_run()
                break
    return json.loads(json.dumps(data))  # it really is JSON


@pytest.mark.anyio
async def test_a_waiting_run_resumes_from_its_saved_context() -> None:
    data = await _pause_at_second_question()
    assert data["store"] == {"drafted": 1, "name": "ann"}
    ctx = Context.from_dict(Approve(), data)
    async with Approve().run(ctx=ctx) as handler:
        questions = []
        async for ev in handler.stream_events():
            if isinstance(ev, Question):
                questions.append(ev.prefix)
                handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "owls by ann: yes"
    # The step ran again from its start: its first wait was remembered (no
    # second "name?"), the code before it ran again (drafted is 2).
    assert questions == ["ok?"]
    assert await ctx.store.get("drafted") == 2


def test_a_saved_run_finishes_in_another_process(tmp_path: Path) -> None:
    data = anyio.run(_pause_at_second_question)
    saved = tmp_path / "ctx.json"
    saved.write_text(json.dumps(data))
    script = f"""
import json, anyio
from anyflow import Context, HumanResponseEvent
from tests.serde_flows import Approve, Question

async def main():
    ctx = Context.from_dict(Approve(), json.loads(open({str(saved)!r}).read()))
    async with Approve().run(ctx=ctx) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, Question):
                handler.send_event(HumanResponseEvent(response="yes"))
        print(await handler)

anyio.run(main, backend="trio")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "owls by ann: yes"


@pytest.mark.anyio
async def test_resume_while_a_fan_out_is_half_collected() -> None:
    first = HalfCollected(block_from=3)
    async with BasicRuntime() as runtime:
        handler = first.run(runtime=runtime)
        while len(first.worked) < 3:
            await anyio.wait_all_tasks_blocked()
        await anyio.wait_all_tasks_blocked()
        data = json.loads(json.dumps(handler.ctx.to_dict()))
        await handler.cancel_run()
    collected = data["run"]["collections"]
    assert [len(c["events"]) for c in collected] == [3]

    second = HalfCollected()
    assert await second.run(ctx=Context.from_dict(second, data)) == [0, 10, 20, 30, 40]
    assert sorted(second.worked) == [3, 4]  # only the unfinished items ran again


@pytest.mark.anyio
async def test_a_finished_runs_context_carries_its_store_to_a_new_run() -> None:
    wf = HalfCollected()
    async with wf.run() as handler:
        await handler
        await handler.ctx.store.set("note", "kept")
        data = handler.ctx.to_dict()
    assert data["run"] is None
    ctx = Context.from_dict(wf, data)
    assert await wf.run(ctx=ctx) == [0, 10, 20, 30, 40]
    assert await ctx.store.get("note") == "kept"


def test_bad_saved_data_says_where() -> None:
    wf = HalfCollected()
    good = {"version": 1, "workflow": "tests.serde_flows:HalfCollected", "store": {}, "run": None}
    Context.from_dict(wf, good)
    with pytest.raises(
        ContextSerdeError,
        match=r"^Cannot load serialized workflow context with version=7; this anyflow reads "
        r"version 1 contexts \(\$\.version\); the payload was likely written by a newer version",
    ):
        Context.from_dict(wf, {**good, "version": 7})
    running = {"status": "running"}
    with pytest.raises(
        ContextSerdeError, match=r"^\$\.workflow: this context was saved from 'x:Y'"
    ):
        Context.from_dict(wf, {**good, "workflow": "x:Y", "run": running})
    with pytest.raises(ContextSerdeError, match=r"^unknown keys at \$: extra$"):
        Context.from_dict(wf, {**good, "extra": 1})
    with pytest.raises(ContextSerdeError, match=r"^missing \$\.run\.queues$"):
        Context.from_dict(wf, {**good, "run": {"status": "running"}})
    unknown = {"__anyflow_event__": "nowhere:Gone", "fields": {}}
    with pytest.raises(ContextSerdeError, match=r"^unknown event type 'nowhere:Gone' at \$\.x"):
        decode_event(unknown, "$.x")
    wrong = {"__anyflow_event__": "tests.serde_flows:Item", "fields": {"n": "one"}}
    with pytest.raises(
        ContextSerdeError, match=r"^field 'n' of Item at \$\.fields\.n does not fit <class 'int'>"
    ):
        decode_event(wrong)


@pytest.mark.anyio
async def test_a_store_value_json_cannot_hold_is_named_on_save() -> None:
    wf = HalfCollected()
    ctx = Context(wf)
    await ctx.store.set("when", object())
    with pytest.raises(
        ContextSerdeError, match=r"^object value at \$\.store\.when is not JSON-safe"
    ):
        ctx.to_dict()


class Rich(Event):
    name: str
    count: int = 0
    ratio: float = 0.0
    tags: list[str] = attrs.field(factory=list)
    nested: StartEvent | None = None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
events = st.one_of(
    st.builds(
        Rich,
        name=st.text(),
        count=st.integers(),
        ratio=st.floats(allow_nan=False, allow_infinity=False),
        tags=st.lists(st.text(), max_size=3),
        nested=st.none() | st.builds(StartEvent, topic=st.text()),
    ),
    st.builds(StopEvent, result=json_values),
    st.builds(HumanResponseEvent, response=json_values),
)


@given(events)
def test_every_event_round_trips_through_json(event: Event) -> None:
    data = json.loads(json.dumps(encode_event(event)))
    assert decode_event(data) == event
