"""What anyflow logs (docs/tracing.md, "What anyflow logs"): nothing at WARNING
for a failure that is handled (retried, caught by ``@catch_error``, or received
by the caller as an exception); one WARNING with its traceback for a failure
nobody can receive any more."""

from __future__ import annotations

import gc
import logging

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    WorkflowFailedEvent,
    catch_error,
    step,
)

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Flaky(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
    async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
        if ctx.retry_info().attempt < 3:
            raise Boom("not yet")
        return StopEvent(result="third time")


class Caught(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise Boom("refused")

    @catch_error
    async def recover(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result=f"caught {ev.exception_type}")


class Fails(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise Boom("no luck")


class FailsWhenTold(Workflow):
    def __init__(self) -> None:
        super().__init__()
        self.started = anyio.Event()
        self.go_on = anyio.Event()

    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        self.started.set()
        await self.go_on.wait()
        raise Boom("failed alone")


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "anyflow" and r.levelno >= logging.WARNING]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="anyflow")
    return caplog


async def test_a_retried_then_successful_step_says_nothing_at_warning(
    logs: pytest.LogCaptureFixture,
) -> None:
    handler = Flaky().run()
    assert await handler == "third time"
    assert loud(logs) == []
    # One line per retried attempt at INFO, without a traceback.
    infos = [r for r in logs.records if r.name == "anyflow"]
    assert [r.getMessage().split(": ", 1)[1] for r in infos] == [
        f"step 'go' failed (attempt {n}) with Boom('not yet'); retrying in 0s" for n in (1, 2)
    ]
    assert all(r.exc_info is None for r in infos)


async def test_the_traceback_of_a_retried_attempt_is_for_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyflow")
    assert await Flaky().run() == "third time"
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retried) == 2
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], Boom) for r in retried)
    assert loud(caplog) == []


async def test_a_caught_failure_says_nothing_at_warning(logs: pytest.LogCaptureFixture) -> None:
    assert await Caught().run() == "caught Boom"
    assert loud(logs) == []
    [record] = [r for r in logs.records if r.name == "anyflow"]
    assert record.getMessage().endswith(
        "step 'go' failed (attempt 1) with Boom('refused'); its @catch_error step takes over"
    )
    assert record.exc_info is None


async def test_a_failure_awaited_by_the_caller_logs_no_traceback(
    logs: pytest.LogCaptureFixture,
) -> None:
    handler = Fails().run()
    with pytest.raises(Boom):
        await handler
    del handler
    gc.collect()
    assert loud(logs) == []
    assert all(r.exc_info is None for r in logs.records)
    [record] = [r for r in logs.records if r.name == "anyflow"]
    assert record.levelno == logging.INFO
    assert "of Fails failed: step 'go' raised Boom('no luck') (attempt 1)" in record.getMessage()


async def test_a_failure_read_with_exception_or_raised_by_the_block_is_not_logged(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with BasicRuntime() as runtime:
        handler = Fails().run(runtime=runtime)
        async for _ in handler.stream_events():
            pass
        assert isinstance(handler.exception(), Boom)
        del handler
    with pytest.raises(Boom):
        async with Fails().run() as handler:
            pass
    del handler
    gc.collect()
    assert loud(logs) == []


async def test_a_failure_nobody_receives_is_logged_once_with_its_traceback(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with BasicRuntime() as runtime:
        handler = Fails().run(runtime=runtime)
        run_id = handler.run_id
        events = [ev async for ev in handler.stream_events()]
        assert isinstance(events[-1], WorkflowFailedEvent)  # seen, but not its exception
        assert loud(logs) == []
        del handler, events
        gc.collect()
    [record] = loud(logs)
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        f"run {run_id} of Fails failed: step 'go' raised Boom('no luck') (attempt 1), "
        "and its handler was dropped without anyone receiving its exception"
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)


async def test_a_hosted_run_that_fails_after_its_handler_is_dropped_is_logged_at_its_end(
    logs: pytest.LogCaptureFixture,
) -> None:
    wf = FailsWhenTold()
    async with BasicRuntime() as runtime:
        handler = wf.run(runtime=runtime)
        run_id = handler.run_id
        await wf.started.wait()
        del handler
        gc.collect()
        assert loud(logs) == []
        wf.go_on.set()
        await anyio.wait_all_tasks_blocked()  # the run has ended
        [record] = loud(logs)
    assert record.getMessage().startswith(
        f"run {run_id} of FailsWhenTold failed: step 'go' raised Boom('failed alone') "
        "(attempt 1), and its handler was dropped before its end"
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)
