"""Outside events at a time: ``send=[(t, event)]`` sends an event at ``t``
seconds of the simulation's clock, so "the answer comes at 29 s against a
30 s deadline" can be written; an answer due with the deadline is sent
before or after it, as the scheduler chooses; ``strategies.around`` draws
times near a deadline for hypothesis to explore."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import given, settings

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.errors import WaitTimeoutError
from anyflow.testing import Schedule, simulate
from anyflow.testing.strategies import around

pytestmark = pytest.mark.anyio


class Answer(Event):
    text: str


class AskOnce(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(Answer, timeout=30)
        return StopEvent(result=answer.text)


def outcome(simulation: Any) -> str:
    try:
        return str(simulation.result)
    except WaitTimeoutError:
        return "timed out"


async def test_an_answer_before_the_deadline_is_taken_after_it_is_not() -> None:
    early = await simulate(AskOnce(), send=[(29, Answer(text="yes"))])
    assert outcome(early) == "yes"
    assert "time 29s: send Answer" in early.trace
    late = await simulate(AskOnce(), send=[(31, Answer(text="yes"))])
    assert outcome(late) == "timed out"
    assert "time 30s" in late.trace


async def test_an_answer_due_with_the_deadline_goes_either_way() -> None:
    outcomes = {
        outcome(await simulate(AskOnce(), schedule=Schedule((c,)), send=[(30, Answer(text="y"))]))
        for c in range(2)
    }
    assert outcomes == {"y", "timed out"}


async def test_untimed_and_timed_events_go_in_order() -> None:
    simulation = await simulate(AskOnce(), send=[Answer(text="now"), (50, Answer(text="later"))])
    assert outcome(simulation) == "now"


def test_send_times_are_checked() -> None:
    with pytest.raises(TypeError, match=r"^send= takes events, or \(time, event\) pairs"):
        anyio.run(lambda: simulate(AskOnce(), send=[("soon", Answer(text="y"))]))
    with pytest.raises(ValueError, match=r"^send= goes in order, and Answer at t=10"):
        anyio.run(
            lambda: simulate(AskOnce(), send=[(20, Answer(text="a")), (10, Answer(text="b"))])
        )


async def test_hypothesis_explores_around_the_deadline() -> None:
    """The property a team believed, 'an answer sent by 30 s is taken', fails
    at exactly 30 s, which ``around(30)`` draws first."""

    @settings(max_examples=50, deadline=None, database=None, derandomize=True)
    @given(t=around(30))
    def answered_in_time(t: float) -> None:
        simulation = anyio.from_thread.run(
            lambda: simulate(AskOnce(), send=[(t, Answer(text="y"))], schedule=Schedule((0,)))
        )
        if t <= 30:
            assert outcome(simulation) == "y", t

    with pytest.raises(AssertionError, match="30"):
        await anyio.to_thread.run_sync(answered_in_time)
