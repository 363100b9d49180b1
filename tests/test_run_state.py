"""``Context.run_state()``: a run's state machine, read from the caller's side.

Tools built on the runtime (the server parks a run that waits for input, and
wakes it at the earliest deadline) read it instead of the engine's insides.
"""

from __future__ import annotations

import anyio

from anyflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.runtime import BasicRuntime
from anyflow.runtime.vocabulary import Completed, RunState, RunStatus

SEEN: list[RunState | None] = []


class Asks(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        SEEN.append(ctx.run_state())
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="?"), timeout=3600
        )
        return StopEvent(result=answer.response)


async def test_the_caller_sees_a_waiting_run_idle_with_its_deadline() -> None:
    SEEN.clear()
    async with BasicRuntime() as runtime:
        handler = Asks().run(runtime=runtime)
        async for event in handler.stream_events():
            if isinstance(event, InputRequiredEvent):
                break
        with anyio.fail_after(10):
            while True:
                state = handler.ctx.run_state()
                assert isinstance(state, RunState)
                if state.idle:
                    break
                await anyio.lowlevel.checkpoint()
        assert state.status is RunStatus.RUNNING
        assert state.outcome is None
        [waiter] = state.waiting.values()
        assert waiter.step == "ask"
        assert waiter.deadline is not None
        handler.ctx.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "yes"
        ended = handler.ctx.run_state()
        assert ended is not None
        assert isinstance(ended.outcome, Completed)
    assert SEEN == [None]  # a step's context does not hand out the run's state


def test_a_context_of_no_run_has_no_state() -> None:
    assert Context(Asks()).run_state() is None
