"""Approval flows: a step asks a human, the caller answers from outside the run."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class PublishFlow(Workflow):
    """Draft a post, ask for approval, publish or discard."""

    @step
    async def draft(self, ev: StartEvent, ctx: Context) -> InputRequiredEvent:
        await ctx.store.set("draft", f"a post about {ev.topic}")
        return InputRequiredEvent(prefix="Publish this? ", draft=f"a post about {ev.topic}")

    @step
    async def decide(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        draft = await ctx.store.get("draft")
        if ev.response == "yes":
            return StopEvent(result=f"published: {draft} (by {ev.reviewer})")
        return StopEvent(result=f"discarded: {draft} (by {ev.reviewer})")


async def test_answer_through_handler_send_event_while_streaming() -> None:
    seen: list[Event] = []
    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        async for ev in handler.stream_events():
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                assert ev.prefix == "Publish this? "
                assert ev.draft == "a post about owls"
                handler.send_event(HumanResponseEvent(response="yes", reviewer="ann"))
        result = await handler

    assert result == "published: a post about owls (by ann)"
    assert [type(ev) for ev in seen] == [InputRequiredEvent, StopEvent]
    assert seen[-1].result == result


async def test_answer_through_handler_ctx_send_event() -> None:
    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.ctx.send_event(HumanResponseEvent(response="no", reviewer="bob"))
        result = await handler

    assert result == "discarded: a post about owls (by bob)"


async def test_send_event_return_value_may_be_awaited() -> None:
    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes", reviewer="cy"))
        result = await handler

    assert result == "published: a post about owls (by cy)"


async def test_response_sent_before_the_caller_reads_the_stream() -> None:
    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        # let the run publish its question while nobody is reading the stream
        await anyio.wait_all_tasks_blocked()
        handler.send_event(HumanResponseEvent(response="yes", reviewer="dee"))
        result = await handler
        # the run is over, but the events published before reading are kept
        events = [ev async for ev in handler.stream_events()]

    assert result == "published: a post about owls (by dee)"
    assert [type(ev) for ev in events] == [InputRequiredEvent, StopEvent]
    assert events[0].draft == "a post about owls"


class ApproveFlow(Workflow):
    """Like PublishFlow, but the decision does not depend on the draft step having
    run first: an answer may arrive before the question, and the two steps race."""

    @step
    async def draft(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Publish this? ")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"{ev.response} (by {ev.reviewer})")


async def test_response_sent_before_the_question_is_even_asked() -> None:
    async with ApproveFlow(timeout=10).run(topic="owls") as handler:
        handler.send_event(HumanResponseEvent(response="yes", reviewer="eve"))
        events = [ev async for ev in handler.stream_events()]
        result = await handler

    assert result == "yes (by eve)"
    assert isinstance(events[-1], StopEvent)


async def test_sending_an_event_no_step_accepts_fails_in_the_sender() -> None:
    class Unwanted(Event):
        note: str

    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        with pytest.raises(WorkflowRuntimeError) as info:
            handler.send_event(Unwanted(note="hello"))
        assert "HumanResponseEvent" in str(info.value)
        # the run itself is unaffected and can still be answered
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="yes", reviewer="fay"))
        result = await handler

    assert result == "published: a post about owls (by fay)"


# -- typed human-in-the-loop events and a multi-round conversation --------------------------


class AskForChange(InputRequiredEvent):
    round: int
    draft: str


class Feedback(HumanResponseEvent):
    approved: bool
    comment: str = ""


class EditorFlow(Workflow):
    """Revise a draft until the reviewer approves it."""

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> AskForChange:
        await ctx.store.set("history", [ev.text])
        return AskForChange(round=1, draft=ev.text)

    @step
    async def revise(self, ev: Feedback, ctx: Context) -> AskForChange | StopEvent:
        async with ctx.store.edit_state() as state:
            history = state["history"]
            if ev.approved:
                return StopEvent(result=history)
            history.append(f"{history[-1]} + {ev.comment}")
            state["history"] = history
        return AskForChange(round=len(history), draft=history[-1])


async def test_typed_input_required_and_feedback_over_several_rounds() -> None:
    rounds: list[int] = []
    async with EditorFlow(timeout=10).run(text="owls") as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, AskForChange):
                rounds.append(ev.round)
                if ev.round < 3:
                    handler.send_event(Feedback(approved=False, comment=f"fix {ev.round}"))
                else:
                    handler.ctx.send_event(Feedback(approved=True))
        history = await handler

    assert rounds == [1, 2, 3]
    assert history == ["owls", "owls + fix 1", "owls + fix 1 + fix 2"]


def test_human_events_take_free_fields_and_a_closed_feedback_refuses_them() -> None:
    assert HumanResponseEvent(response="ok", channel="slack").channel == "slack"
    assert InputRequiredEvent(prefix="?", question="why").question == "why"
    # A misspelt optional field is a free field, as in llama-index-workflows...
    assert Feedback(approved=True, comentt="typo")._data == {"comentt": "typo"}

    # ...unless the class says open=False.
    class StrictFeedback(Feedback, open=False):
        pass

    with pytest.raises(TypeError, match="StrictFeedback has no field 'comentt'"):
        StrictFeedback(approved=True, comentt="typo")


async def test_a_question_nobody_answers_times_out() -> None:
    from anyflow import WorkflowTimedOutEvent, WorkflowTimeoutError

    events: list[Event] = []

    async def read_everything() -> None:
        async with PublishFlow(timeout=30).run(topic="owls") as handler:
            async for ev in handler.stream_events():
                events.append(ev)

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await read_everything()

    # the question was asked, then nothing came for the run's 30 s
    assert clock.now() == 30
    assert events == [
        InputRequiredEvent(prefix="Publish this? ", draft="a post about owls"),
        WorkflowTimedOutEvent(timeout=30, active_steps=()),
    ]


class Triage(Workflow):
    """Two reviewers listen for responses; the caller may address one of them."""

    @step
    async def start(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="who decides?")

    @step
    async def legal(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"legal: {ev.response}")

    @step
    async def editor(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=f"editor: {ev.response}")


async def test_send_event_to_a_named_step() -> None:
    for target in ("legal", "editor"):
        async with Triage(timeout=10).run() as handler:
            handler.send_event(HumanResponseEvent(response="ok"), step=target)
            assert await handler == f"{target}: ok"


async def test_send_event_to_an_unknown_step_names_the_steps() -> None:
    async with Triage(timeout=10).run() as handler:
        with pytest.raises(WorkflowRuntimeError) as info:
            handler.send_event(HumanResponseEvent(response="ok"), step="lega")
        assert "legal" in str(info.value)
        handler.send_event(HumanResponseEvent(response="ok"), step="legal")
        assert await handler == "legal: ok"


async def test_the_caller_may_stop_reading_answer_and_resume_the_stream() -> None:
    from contextlib import aclosing

    async with PublishFlow(timeout=10).run(topic="owls") as handler:
        async with aclosing(handler.stream_events()) as stream:
            async for ev in stream:
                assert isinstance(ev, InputRequiredEvent)
                break
        handler.send_event(HumanResponseEvent(response="yes", reviewer="gus"))
        rest = [ev async for ev in handler.stream_events()]
        result = await handler

    assert result == "published: a post about owls (by gus)"
    assert rest == [StopEvent(result=result)]
