"""How runs end badly: step errors, retries, cancellation, timeouts; and that
each leaves nothing running."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowRuntimeError,
    WorkflowTimedOutEvent,
    WorkflowTimeoutError,
    step,
)
from anyflow.runtime import RuntimeDecorator
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Failing(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise Boom("no luck")


class Blocked(Workflow):
    """A step that waits forever and records that its cleanup ran."""

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.started = anyio.Event()
        self.cleaned_up = False

    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        try:
            self.started.set()
            await anyio.sleep_forever()
        finally:
            self.cleaned_up = True
        return StopEvent()


def task_names() -> set[str]:
    return {task.name for task in anyio.get_running_tasks()}


def anyflow_tasks() -> set[str]:
    return {name for name in task_names() if name.startswith("anyflow")}


async def test_step_exception_reaches_the_caller_as_itself_with_the_step_named() -> None:
    with pytest.raises(Boom) as info:
        await Failing().run()
    assert str(info.value) == "no luck"
    assert info.value.__notes__ == ["raised by step 'go' (attempt 1)"]


async def test_failure_is_published_last_on_the_stream() -> None:
    async with Failing().run() as handler:
        events = [ev async for ev in handler.stream_events()]
        assert isinstance(handler.exception(), Boom)
    assert events == [
        WorkflowFailedEvent(
            step_name="go", exception_type="Boom", exception_message="no luck", attempts=1
        )
    ]


async def test_a_failure_nobody_looked_at_is_raised_when_the_block_ends() -> None:
    with pytest.raises(Boom):
        async with Failing().run():
            pass


async def test_retries_until_success_then_reports_attempts() -> None:
    attempts: list[int] = []

    class Flaky(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            info = ctx.retry_info()
            attempts.append(info.attempt)
            if info.attempt < 3:
                raise Boom(f"attempt {info.attempt}")
            assert isinstance(info.last_exception, Boom)
            return StopEvent(result=str(info.last_exception))

    assert await Flaky().run() == "attempt 2"
    assert attempts == [1, 2, 3]


async def test_exhausted_retries_fail_with_the_original_exception() -> None:
    class AlwaysFails(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
        async def go(self, ev: StartEvent) -> StopEvent:
            raise Boom("still no luck")

    with pytest.raises(Boom) as info:
        await AlwaysFails().run()
    assert str(info.value) == "still no luck"
    assert info.value.__notes__ == ["raised by step 'go' (attempt 2)"]


async def test_a_step_returning_a_non_event_fails_with_advice() -> None:
    class ReturnsString(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return "done"  # type: ignore[return-value]

    with pytest.raises(
        TypeError,
        match=r"^Step function go returned str instead of an Event instance \('done'\); a step "
        r"returns an Event or None",
    ):
        await ReturnsString().run()


async def test_a_step_returning_an_event_nobody_accepts_fails_the_run() -> None:
    class Stray(Event):
        pass

    class Liar(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return Stray()  # type: ignore[return-value]

    with pytest.raises(
        WorkflowRuntimeError, match=r"^step 'go' returned Stray, which no step accepts"
    ):
        await Liar().run()


async def test_cancel_run_stops_the_step_and_leaves_nothing_running() -> None:
    wf = Blocked()
    before = anyflow_tasks()
    async with BasicRuntime() as runtime:
        handler = wf.run(runtime=runtime)
        await wf.started.wait()
        assert anyflow_tasks() - before  # the run and its step are running
        await handler.cancel_run()
        assert wf.cleaned_up
        assert anyflow_tasks() == before
        with pytest.raises(WorkflowCancelledByUser, match=r"^run '.*' was cancelled$"):
            await handler
        assert [ev async for ev in handler.stream_events()] == [WorkflowCancelledEvent()]
        await handler.cancel_run()  # no-op once over


async def test_timeout_ends_the_run_and_names_the_running_steps() -> None:
    wf = Blocked(timeout=30)
    with virtual_time() as clock:
        async with wf.run() as handler:
            with pytest.raises(
                WorkflowTimeoutError, match=r"timed out after 30s \(steps still running: go\)"
            ):
                await handler
            events = [ev async for ev in handler.stream_events()]
        assert clock.now() == 30
    assert events == [WorkflowTimedOutEvent(timeout=30, active_steps=("go",))]
    assert wf.cleaned_up


async def test_an_exception_in_the_block_cancels_the_run() -> None:
    wf = Blocked()
    before = anyflow_tasks()
    with pytest.raises(KeyError):  # noqa: PT012 - the block is the subject
        async with wf.run() as handler:
            await wf.started.wait()
            raise KeyError("caller gave up")
    assert wf.cleaned_up
    assert anyflow_tasks() == before
    assert isinstance(handler.exception(), WorkflowCancelledByUser)


async def test_cancelling_the_caller_cancels_the_run() -> None:
    wf = Blocked()
    before = anyflow_tasks()
    with virtual_time() as clock:
        with anyio.move_on_after(5) as scope:
            await wf.run()
        assert clock.now() == 5
    assert scope.cancelled_caught
    assert wf.cleaned_up
    assert anyflow_tasks() == before


async def test_leaving_a_runtime_cancels_its_runs() -> None:
    wf = Blocked()
    async with BasicRuntime() as runtime:
        handler = wf.run(runtime=runtime)
        await wf.started.wait()
    assert wf.cleaned_up
    assert isinstance(handler.exception(), WorkflowCancelledByUser)


async def test_failure_cancels_sibling_workers() -> None:
    class Go(Event):
        pass

    sibling = Blocked()

    class Mixed(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Go | None:
            ctx.send_event(Go())
            return None

        @step
        async def block(self, ev: StartEvent) -> StopEvent:
            return await sibling.go(ev)

        @step
        async def fail(self, ev: Go) -> StopEvent:
            await sibling.started.wait()
            raise Boom("sibling must stop")

    with pytest.raises(Boom):
        await Mixed().run()
    assert sibling.cleaned_up


async def test_runtime_outside_its_block_is_refused() -> None:
    # A BasicRuntime outside its block makes runs driven by their callers
    # (tests/test_unscoped.py); a runtime over one must be entered first.
    with pytest.raises(RuntimeError, match=r"^this BasicRuntime is not running"):
        Failing().run(runtime=RuntimeDecorator(BasicRuntime()))


async def test_failure_events_carry_the_exception_in_process_and_its_name_after_a_save() -> None:
    from anyflow import StepFailedEvent, WorkflowFailedEvent, catch_error
    from anyflow.serialization import SavedError, decode_event, encode_event

    seen: list[BaseException] = []

    class Caught(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            raise KeyError("k")

        @catch_error
        async def fallback(self, ev: StepFailedEvent) -> StopEvent:
            seen.append(ev.exception)
            return StopEvent(result="fallback")

    assert await Caught().run() == "fallback"
    assert isinstance(seen[0], KeyError)

    class Fails(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            raise ValueError("bad")

    async with Fails().run() as handler:
        events = [ev async for ev in handler.stream_events()]
        error = handler.exception()
    last = events[-1]
    assert isinstance(last, WorkflowFailedEvent)
    assert isinstance(last.exception, ValueError)
    assert last.exception is error
    replayed = decode_event(encode_event(last))
    assert replayed == last  # the exception object is not part of the event
    assert isinstance(replayed.exception, SavedError)
    assert (replayed.exception.type_name, str(replayed.exception)) == ("ValueError", "bad")
