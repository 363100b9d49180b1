"""DBOSRuntime in one process: what a run records, resuming, following a run,
and bad input.  Crashes and several processes: test_crash.py and
test_cross_process.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from dbos import DBOS, SetWorkflowID

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.dbos import DBOSRuntime
from anyflow.errors import DurabilityError, WorkflowChangedError
from anyflow.events import HumanResponseEvent, InputRequiredEvent
from anyflow.retry import ConstantDelayRetryPolicy

if TYPE_CHECKING:
    from pathlib import Path

RAN: list[str] = []
"""What the steps of this module did, in order (cleared by each test)."""


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


class Next(Event):
    n: int


class Chain(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Next:
        RAN.append("begin")
        return Next(n=ev.n)

    @step
    async def count(self, ev: Next) -> Next | StopEvent:
        RAN.append(f"count {ev.n}")
        return StopEvent(result="done") if ev.n == 0 else Next(n=ev.n - 1)


class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> InputRequiredEvent:
        RAN.append("ask")
        await ctx.store.set("asked", ev.who)
        return InputRequiredEvent(prefix=f"name for {ev.who}?")

    @step
    async def answer(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        RAN.append("answer")
        return StopEvent(result=f"{await ctx.store.get('asked')}: {ev.response}")


class AskV2(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="?")

    @step(num_workers=2)
    async def reply(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)


class Flaky(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.01, maximum_attempts=3))
    async def work(self, ev: StartEvent, ctx: Context) -> StopEvent:
        attempt = ctx.retry_info().attempt
        RAN.append(f"work {attempt}")
        if attempt < 2:
            raise ConnectionError("the first attempt fails")
        return StopEvent(result=attempt)


class Broken(Workflow):
    @step
    async def work(self, ev: StartEvent) -> StopEvent:
        raise ValueError("no stock for this order")


def runtime(database_url: str, **options: object) -> DBOSRuntime:
    return DBOSRuntime(
        name="anyflow-tests",
        database_url=database_url,
        dbos_config={"log_level": "WARNING"},
        **options,  # type: ignore[arg-type]
    )


async def until_question(handler: object) -> InputRequiredEvent:
    async for event in handler.stream_events():  # type: ignore[attr-defined]
        if isinstance(event, InputRequiredEvent):
            return event
    raise AssertionError("the run ended without asking")


async def records_of(run_id: str) -> list[str]:
    return [s["function_name"] for s in await DBOS.list_workflow_steps_async(run_id)]


async def test_a_chain_records_one_dbos_step_per_step_and_is_not_run_again(
    database_url: str,
) -> None:
    async with runtime(database_url) as rt:
        assert await Chain().run(run_id="chain-1", runtime=rt, n=20) == "done"
        assert len(RAN) == 22
        recorded = await records_of("chain-1")
        # The start, then one batch per finished step; nothing else.
        assert recorded == ["anyflow.record"] * (1 + 22)
        RAN.clear()
        assert await Chain().run(run_id="chain-1", runtime=rt) == "done"
        assert RAN == []
        assert await records_of("chain-1") == recorded


async def test_human_in_the_loop_through_a_follower_of_the_run(database_url: str) -> None:
    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-1", runtime=rt, who="ada")
        follower = rt.attach(Ask(), "ask-1")
        question = await until_question(follower)
        assert question.prefix == "name for ada?"
        await follower.send_event(HumanResponseEvent(response="Ada Lovelace"))
        assert await follower == "ada: Ada Lovelace"
        assert await handler == "ada: Ada Lovelace"
        assert RAN == ["ask", "answer"]


async def test_a_run_left_waiting_is_resumed_by_the_next_runtime(database_url: str) -> None:
    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-2", runtime=rt, who="bob")
        await until_question(handler)
    assert RAN == ["ask"]
    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-2", runtime=rt)
        events = handler.stream_events()
        assert isinstance(await anext(events), InputRequiredEvent)  # replayed, not asked again
        await handler.send_event(HumanResponseEvent(response="Bob"))
        assert await handler == "bob: Bob"  # the state store came back too
        await events.aclose()
    assert RAN == ["ask", "answer"]


async def test_a_retried_step_is_recorded_with_its_attempts(database_url: str) -> None:
    async with runtime(database_url) as rt:
        assert await Flaky().run(run_id="flaky-1", runtime=rt) == 2
        assert RAN == ["work 1", "work 2"]
        RAN.clear()
        assert await Flaky().run(run_id="flaky-1", runtime=rt) == 2
        assert RAN == []


async def test_a_failed_run_fails_for_its_caller_and_its_followers(database_url: str) -> None:
    async with runtime(database_url) as rt:
        with pytest.raises(ValueError, match="no stock"):
            await Broken().run(run_id="broken-1", runtime=rt)
        with pytest.raises(Exception, match="no stock"):
            await rt.attach(Broken(), "broken-1")


async def test_a_follower_cancels_the_run(database_url: str) -> None:
    from anyflow.errors import WorkflowCancelledByUser

    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-3", runtime=rt, who="cy")
        follower = rt.attach(Ask(), "ask-3")
        await until_question(follower)
        await follower.cancel_run()
        with pytest.raises(WorkflowCancelledByUser):
            await handler
        with pytest.raises(WorkflowCancelledByUser):
            await follower


async def test_a_run_id_of_another_workflow_is_refused_and_left_alone(
    database_url: str,
) -> None:
    async with runtime(database_url) as rt:
        assert await Chain().run(run_id="order-7", runtime=rt, n=1) == "done"
        before = await records_of("order-7")
        with pytest.raises(DurabilityError) as caught:
            await Ask().run(run_id="order-7", runtime=rt, who="x")
        message = str(caught.value)
        assert "'order-7'" in message
        assert "test_runtime:Chain" in message
        assert "test_runtime:Ask" in message
        with pytest.raises(DurabilityError, match="is a run of"):
            await rt.attach(Ask(), "order-7")
        assert await records_of("order-7") == before


@DBOS.workflow(name="tests.not_anyflow")
async def not_anyflow() -> str:
    return "plain DBOS"


async def test_the_id_of_a_plain_dbos_workflow_is_refused(database_url: str) -> None:
    async with runtime(database_url) as rt:
        with SetWorkflowID("plain-1"):
            assert await not_anyflow() == "plain DBOS"
        with pytest.raises(DurabilityError, match="not an anyflow run"):
            await Chain().run(run_id="plain-1", runtime=rt, n=1)


async def test_resuming_with_a_changed_workflow_names_what_changed(database_url: str) -> None:
    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-4", runtime=rt, who="dee")
        await until_question(handler)
    AskV2.__qualname__ = "Ask"  # the same name, another step graph
    try:
        async with runtime(database_url) as rt:
            with pytest.raises(WorkflowChangedError) as caught:
                await AskV2().run(run_id="ask-4", runtime=rt)
    finally:
        AskV2.__qualname__ = "AskV2"
    message = str(caught.value)
    assert "'ask-4'" in message
    assert "step 'answer' was removed" in message
    assert "step 'reply' was added" in message
    # Nothing was lost: the right workflow still finishes the run.
    async with runtime(database_url) as rt:
        handler = Ask().run(run_id="ask-4", runtime=rt)
        await handler.send_event(HumanResponseEvent(response="Dee"))
        assert await handler == "dee: Dee"


async def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DurabilityError) as caught:
        async with DBOSRuntime(
            name="anyflow-tests", database_url="postgresql://postgres:secret@127.0.0.1:1/nope"
        ):
            pass
    message = str(caught.value)
    assert "postgresql://postgres:***@127.0.0.1:1/nope" in message
    assert "secret" not in message
    assert "Check that the database server runs" in message


def test_a_bad_application_name_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        DBOSRuntime(name="My App", database_url="sqlite:///x.db")


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_with_the_alternative() -> None:
    with pytest.raises(RuntimeError) as caught:
        DBOSRuntime(name="anyflow-tests", database_url="sqlite:///never.db")
    assert "asyncio only" in str(caught.value)
    assert "anyflow.durable.DurableRuntime" in str(caught.value)


async def test_a_dbos_the_application_launched_is_used_and_left_running(tmp_path: Path) -> None:
    DBOS(
        config={
            "name": "my-app",
            "system_database_url": f"sqlite:///{tmp_path / 'app.db'}",
            "executor_id": "worker-1",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    try:
        async with DBOSRuntime() as rt:
            assert rt.executor_id == "worker-1"
            assert await Chain().run(run_id="chain-2", runtime=rt, n=2) == "done"
        # The application's DBOS is still up: its records are there to read.
        assert await records_of("chain-2") == ["anyflow.record"] * 5
        status = await DBOS.get_workflow_status_async("chain-2")
        assert status is not None
        assert (status.name, status.executor_id) == ("anyflow.run", "worker-1")
    finally:
        DBOS.destroy()


async def test_without_a_database_url_dbos_must_be_launched_first() -> None:
    with pytest.raises(RuntimeError, match=r"call DBOS\(config=...\) and DBOS.launch\(\) first"):
        async with DBOSRuntime():
            pass
