"""A value a durable run could not record is refused in the caller, at once.

Once a run has accepted an event, its journal must be able to write it and
read it back after a crash; a value it cannot (a number JSON has no text for,
a string that is not text, a key that is not a string, a value nested deeper
than a decoder's recursion allows, a field whose value does not fit its type)
used to be taken and then stopped the run, or froze it.  Now ``wf.run()`` and
``handler.send_event()`` raise ``ContextSerdeError`` before anything is sent,
and the run goes on as if it never came.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from anyflow import Context, HumanResponseEvent, StartEvent, StopEvent, Workflow, step
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.errors import ContextSerdeError


class Reply(HumanResponseEvent):
    n: int = 0


class Wait(Workflow):
    """Waits for a Reply and reports it (shared with tests/dbos)."""

    @step
    async def wait(self, ev: StartEvent, ctx: Context) -> StopEvent:
        reply = await ctx.wait_for_event(Reply)
        return StopEvent(result=[reply.response, reply.n])


def nested(depth: int) -> Any:
    """``depth`` lists in one another (shared with tests/dbos)."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


UNRECORDABLE = [
    pytest.param(float("inf"), r"inf at .* is not a finite number", id="inf"),
    pytest.param(float("-inf"), r"-inf at .* is not a finite number", id="-inf"),
    pytest.param(float("nan"), r"nan at .* is not a finite number", id="nan"),
    pytest.param("\ud800", r"lone surrogate", id="lone-surrogate"),
    pytest.param({"\udfff": 1}, r"lone surrogate", id="lone-surrogate-key"),
    pytest.param(10**5000, r"integer string conversion", id="int-of-5000-digits"),
    pytest.param({1: "one"}, r"key 1 at .* is not a string", id="int-key"),
    pytest.param({(1, 2): "pair"}, r"TypeError", id="tuple-key"),
    pytest.param(b"bytes", r"bytes value at .* is not JSON-safe", id="bytes"),
    pytest.param({1, 2}, r"set value at .* is not JSON-safe", id="set"),
    pytest.param(object(), r"object value at .* is not JSON-safe", id="object"),
    pytest.param(nested(150), r"nests deeper than 100 levels", id="150-levels"),
    pytest.param(nested(5000), r"nests deeper than 100 levels", id="5000-levels"),
]


@pytest.mark.parametrize(("value", "why"), UNRECORDABLE)
async def test_an_unrecordable_sent_value_is_refused_and_the_run_goes_on(
    value: Any, why: str
) -> None:
    async with DurableRuntime(MemoryStore()) as runtime:
        handler = Wait().run(run_id="w", runtime=runtime)
        await handler.wait_recorded()
        with pytest.raises(ContextSerdeError, match=rf"run 'w' cannot record Reply: .*{why}"):
            handler.send_event(Reply(response=value))
        await handler.send_event(Reply(response="fine", n=3))
        assert await handler == ["fine", 3]
        # What the journal holds reads back to the same run.
        assert (await runtime.get_run("w")).status == "completed"  # type: ignore[union-attr]


async def test_a_field_that_would_not_read_back_is_refused() -> None:
    """attrs does not check types, so Reply(n="three") can be built; its record
    could not be read back as an int after a crash, so it is refused now."""
    async with DurableRuntime(MemoryStore()) as runtime:
        handler = Wait().run(run_id="w", runtime=runtime)
        with pytest.raises(ContextSerdeError, match=r"cannot record Reply: .*field 'n' of Reply"):
            handler.send_event(Reply(response="ok", n="three"))  # type: ignore[arg-type]
        await handler.send_event(Reply(response="ok", n=1))
        assert await handler == ["ok", 1]


@pytest.mark.parametrize(("value", "why"), UNRECORDABLE)
async def test_an_unrecordable_start_value_is_refused_before_the_run_starts(
    value: Any, why: str
) -> None:
    async with DurableRuntime(MemoryStore()) as runtime:
        with pytest.raises(
            ContextSerdeError, match=rf"cannot record the start event StartEvent: .*{why}"
        ):
            Wait().run(run_id="s", runtime=runtime, topic=value)
        assert await runtime.get_run("s") is None  # nothing started, nothing recorded
        handler = Wait().run(run_id="s", runtime=runtime, topic="owls")
        await handler.send_event(Reply(response="yes", n=2))
        assert await handler == ["yes", 2]


async def test_a_run_without_a_durable_runtime_takes_any_value() -> None:
    """Only a runtime that records runs needs JSON: in memory, anything goes."""
    async with Wait().run() as handler:
        handler.send_event(Reply(response=float("inf"), n=1))
        assert await handler == [float("inf"), 1]


def _text_length(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    raise ValueError(f"a Measured takes text, not {value!r}")


class Measured(HumanResponseEvent):
    """Its converter takes text only, so its record (the length) cannot be read back."""

    size: int = attrs.field(default=0, converter=_text_length)


def _causes(error: BaseException) -> list[BaseException]:
    chain = []
    while error.__cause__ is not None:
        error = error.__cause__
        chain.append(error)
    return chain


async def test_a_refusal_keeps_the_error_of_the_users_code_as_its_cause() -> None:
    """The message says what could not be recorded; the chain of causes leads
    to the user's own code that failed (here a converter), for debugging."""
    async with DurableRuntime(MemoryStore()) as runtime:
        handler = Wait().run(run_id="w", runtime=runtime)
        with pytest.raises(ContextSerdeError, match=r"^run 'w' cannot record Measured: ") as sent:
            handler.send_event(Measured(response="ok", size="abc"))  # type: ignore[arg-type]
        assert any(
            isinstance(c, ValueError) and "takes text" in str(c) for c in _causes(sent.value)
        )
        with pytest.raises(
            ContextSerdeError, match=r"^a durable run cannot record the start "
        ) as started:
            Wait().run(run_id="s", runtime=runtime, start_event=_StartMeasured(size="abc"))
        assert any(isinstance(c, ValueError) for c in _causes(started.value))
        await handler.send_event(Reply(response="ok", n=1))
        assert await handler == ["ok", 1]


class _StartMeasured(StartEvent):
    size: int = attrs.field(default=0, converter=_text_length)
