"""Drawings of recorded runs: what ``run_graph`` reads from a run's journal
(which steps ran, how often, in what order, where the run failed) and how
``mermaid`` draws it; on both backends, from a durable store as a user has one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from anyflow import HumanResponseEvent, InputRequiredEvent
from anyflow.durable import DurableRuntime, MemoryStore, SqliteStore
from anyflow.graph import (
    RunGraph,
    StepActivity,
    mermaid,
    recorded_run_graph,
    run_graph,
    workflow_graph,
)
from anyflow.testing import replay_journal
from tests.cli.flows import Hello
from tests.cli.runflows import Interview, Review

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from anyflow.durable import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _quiet_step_failures() -> Iterator[None]:
    """The engine logs each failed step with its traceback; these runs fail on purpose."""
    logger = logging.getLogger("anyflow")
    logger.disabled = True
    yield
    logger.disabled = False


async def record_review(store: Store) -> None:
    async with DurableRuntime(store) as runtime:
        with pytest.raises(ValueError, match="is <too> short"):
            await Review().run(run_id="review-1", runtime=runtime)


async def test_a_failed_run_says_what_ran_in_what_order_and_where_it_failed(
    tmp_path: Path,
) -> None:
    async with SqliteStore(str(tmp_path / "runs.db")) as store:
        await record_review(store)
        run = await recorded_run_graph(store, "review-1", Review)

    assert run.run_id == "review-1"
    assert run.status == "failed"
    assert run.failed_step == "review"
    assert run.error == "ValueError: 'first draft' is <too> short after 2 attempt(s)"
    assert run.steps == {
        "write": StepActivity(started=1, succeeded=1, order=1),
        "review": StepActivity(
            started=2, failed=2, order=2, last_error="ValueError: 'first draft' is <too> short"
        ),
        "rewrite": StepActivity(),
    }
    assert run.order() == ["write", "review"]
    assert run.events == {"StartEvent": 1, "Draft": 1, "StopEvent": 0, "Rejected": 0}
    assert run.ticks == 5  # start, write done, review failed, retry timer, review failed
    assert run.duration is not None
    assert run.duration >= 0


async def test_mermaid_draws_the_run_failed_step_red_and_what_never_ran_grey() -> None:
    store = MemoryStore()
    await record_review(store)
    text = mermaid(await recorded_run_graph(store, "review-1", Review()))

    assert text.startswith(
        "flowchart TD\n"
        "    %% run review-1 of Review: failed in step 'review': "
        "ValueError: 'first draft' is <too> short after 2 attempt(s)\n"
    )
    assert '    step_write["1. write<br/>1 attempt: 1 ok"]\n' in text
    assert (
        '    step_review["2. review<br/>2 attempts: 0 ok, 2 failed<br/>'
        "ValueError: 'first draft' is #lt;too#gt; short after 2 attempt(s)\"]\n"
    ) in text
    assert '    step_rewrite["rewrite<br/>not run"]\n' in text
    assert '    event_Draft(["Draft \N{MULTIPLICATION SIGN}1"])\n' in text
    assert "    class step_review failed\n" in text
    assert "    class event_StopEvent,event_Rejected,step_rewrite notrun\n" in text
    # The graph's edges are all there, as in the drawing of the workflow alone.
    assert text.count(" --> ") == mermaid(workflow_graph(Review)).count(" --> ") == 7


async def test_a_completed_run_read_through_its_handler() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Hello().run(run_id="greet-1", runtime=runtime, name="Ada")
        assert await handler == {"greeting": "hello Ada"}
        run = await recorded_run_graph(store, handler, Hello())

    assert run.status == "completed"
    assert (run.failed_step, run.error, run.active) == (None, None, ())
    assert run.order() == ["compose", "finish"]
    assert all(a.started == a.succeeded == 1 for a in run.steps.values())
    assert run.events == {"Greet": 1, "Greeting": 1, "StopEvent": 1}
    assert "notrun" not in mermaid(run)


async def test_a_live_run_is_drawn_where_it_stands() -> None:
    store = MemoryStore()
    answers = ["Ada", "blue"]
    live: RunGraph | None = None
    async with DurableRuntime(store) as runtime:
        handler = Interview().run(run_id="interview-1", runtime=runtime)
        async for event in handler.stream_events():
            if isinstance(event, InputRequiredEvent):
                if live is None:  # the step waits for its first answer
                    live = await recorded_run_graph(store, "interview-1", Interview())
                handler.send_event(HumanResponseEvent(response=answers.pop(0)))
        assert await handler == "Ada likes blue"
        done = await recorded_run_graph(store, "interview-1", Interview())

    assert live is not None
    assert live.status == "running"
    assert live.active == ("interview",)
    assert live.steps["interview"] == StepActivity(started=1, order=1)
    assert "    class step_interview active\n" in mermaid(live)
    assert done.status == "completed"
    # The answers are no node of the graph: only a wait asks for them.
    assert done.events == {"StartEvent": 1, "StopEvent": 1}


async def test_an_unknown_run_or_a_run_of_another_workflow_is_refused() -> None:
    store = MemoryStore()
    await record_review(store)
    with pytest.raises(LookupError, match=r"^the store has no run 'review-2'$"):
        await recorded_run_graph(store, "review-2", Review())
    with pytest.raises(
        ValueError,
        match=r"^run 'review-1' is a run of tests\.cli\.runflows:Review, not of Hello: "
        r"read it with the workflow that recorded it$",
    ):
        await recorded_run_graph(store, "review-1", Hello())


async def test_ticks_that_do_not_fit_the_workflow_are_refused() -> None:
    store = MemoryStore()
    await record_review(store)
    ticks = [step.tick for step in await replay_journal(store, "review-1", Review())]
    with pytest.raises(
        ValueError,
        match=r"^tick 1 \(StepCompleted\) does not fit a run of Hello: no step was started as "
        r"worker 0 \(the recorded events reach none of its steps: ",
    ):
        run_graph(Hello(), ticks)


def test_run_graph_is_a_plain_function_of_the_ticks() -> None:
    assert isinstance(run_graph(Hello(), []), RunGraph)
    empty = run_graph(Hello, [])
    assert empty.status == "running"
    assert empty.ticks == 0
    assert empty.duration is None
    assert not any(a.ran for a in empty.steps.values())
