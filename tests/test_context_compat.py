"""The Context where code written for llama-index-workflows meets it: its
warnings, its error classes and first sentences, saved contexts from another
workflow or from the incumbent, and the incumbent's internals that import and
refuse to be used."""

from __future__ import annotations

import contextvars
import gc
import json
import pickle
import warnings
import weakref
from typing import Any

import pytest

from anyflow import (
    BasicRuntime,
    Context,
    ContextSerdeError,
    ContextStateError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from anyflow.context.context import _warn_get_result, _warn_is_running_in_step
from anyflow.context.context_types import CURRENT_SERIALIZED_VERSION
from anyflow.context.serializers import JsonSerializer
from anyflow.context.state_store import (
    DictState,
    InMemorySerializedState,
    InMemoryStateStore,
    parse_in_memory_state,
)
from anyflow.errors import NotInStepError


class Echo(Workflow):
    @step
    async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
        return StopEvent(result=await ctx.store.get("seed", default="none"))


class Other(Workflow):
    @step
    async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("seed", "from Other")
        return StopEvent()


class Boom(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise KeyError("sku")


# Warnings, as the incumbent gives them.


async def test_is_running_in_a_step_is_true_and_warns_once() -> None:
    seen: list[bool] = []

    class Asks(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            seen.append(ctx.is_running)
            seen.append(ctx.is_running)
            return StopEvent()

    _warn_is_running_in_step.cache_clear()
    with pytest.warns(DeprecationWarning, match=r"^is_running called from within a step") as caught:
        await Asks().run()
    assert seen == [True, True]
    assert [str(w.message) for w in caught] == [
        "is_running called from within a step; the workflow is always running inside a step. "
        "This usage is deprecated."
    ]
    assert caught[0].filename == __file__  # it points at the step's line


async def test_is_running_outside_a_step_does_not_warn() -> None:
    wf = Echo()
    ctx = Context(wf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ctx.is_running is False
        async with wf.run(ctx=ctx) as handler:
            await handler
        assert handler.ctx.is_running is False


async def test_get_result_is_the_runs_result_and_warns() -> None:
    _warn_get_result.cache_clear()
    wf = Echo()
    ctx = Context(wf)
    await ctx.store.set("seed", "owls")
    with (
        pytest.warns(DeprecationWarning, match=r"^Context\.get_result\(\) is deprecated"),
        pytest.raises(
            ContextStateError,
            match=r"^get_result requires a running workflow\. Call workflow\.run\(\) first\. "
            r"Context\.get_result\(\) cannot be used here: this context is not started",
        ),
    ):
        ctx.get_result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        async with wf.run(ctx=ctx) as handler:
            with pytest.raises(
                WorkflowRuntimeError,
                match=r"^Workflow run with run_id \S+ is not complete: await its handler",
            ):
                handler.ctx.get_result()
            assert await handler == "owls"
            assert handler.ctx.get_result() == "owls"


async def test_get_result_of_a_failed_run_raises_its_exception() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = Boom().run()
        with pytest.raises(KeyError):
            await handler
        with pytest.raises(KeyError, match="sku"):
            handler.ctx.get_result()


def test_the_cancel_warnings_of_a_private_path_anyflow_lacks_import_and_refuse() -> None:
    from anyflow.context.context import _warn_cancel_before_start, _warn_cancel_in_step

    for helper in (_warn_cancel_before_start, _warn_cancel_in_step):
        with pytest.raises(
            NotImplementedError,
            match=r"^anyflow\.context\.context\._warn_cancel_\w+ is an internal of "
            r"llama-index-workflows with no counterpart in anyflow: cancel a run with "
            r"`await handler\.cancel_run\(\)`",
        ):
            helper.cache_clear()


# Phases and errors.


async def test_running_steps_before_the_run_says_to_start_it() -> None:
    with pytest.raises(
        ContextStateError,
        match=r"^running_steps requires a running workflow\. Call workflow\.run\(\) first\. ",
    ):
        await Context(Echo()).running_steps()


async def test_get_step_context_holds_no_workflow_after_its_step() -> None:
    # Code in a step may snapshot the context variables and keep the snapshot
    # (an event loop timer does): the snapshot must not keep the run alive.
    snapshots: list[contextvars.Context] = []

    class Tiny(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            assert Context.get_step_context() is not None
            snapshots.append(contextvars.copy_context())
            return StopEvent(result="done")

    refs = []
    for _ in range(3):
        wf = Tiny()
        refs.append(weakref.ref(wf))
        assert await wf.run() == "done"
        del wf
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    with pytest.raises(NotInStepError, match=r"may only be called from within a step function"):
        snapshots[0].run(Context.get_step_context)


# Saved contexts.


async def test_to_dict_writes_the_current_serialized_version() -> None:
    assert Context(Echo()).to_dict()["version"] == CURRENT_SERIALIZED_VERSION == 1


@pytest.mark.parametrize("key", ["state", "is_running", "workers", "queues", "in_progress"])
async def test_reading_a_key_of_the_incumbents_saved_format_names_anyflows(key: str) -> None:
    async with Echo().run() as handler:
        await handler
    data = handler.ctx.to_dict()
    with pytest.raises(KeyError, match=rf"{key}.*anyflow's saved context has no .*data\['run'\]"):
        data[key]
    with pytest.raises(KeyError, match=r"^'nope'$"):
        data["nope"]
    assert data.get(key) is None
    assert key not in data
    # Still a plain dict to JSON, pickle and from_dict.
    assert json.loads(json.dumps(data)) == data
    assert pickle.loads(pickle.dumps(data)) == data


async def test_a_saved_store_seeds_a_run_of_another_workflow() -> None:
    other = Other()
    async with other.run() as handler:
        await handler
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    assert data["run"] is None
    echo = Echo()
    assert await echo.run(ctx=Context.from_dict(echo, data)) == "from Other"


def test_a_saved_run_resumes_only_in_its_own_workflow() -> None:
    data = {
        "version": 1,
        "workflow": "somewhere:Else",
        "store": {},
        "run": {"status": "running"},
    }
    with pytest.raises(
        ContextSerdeError,
        match=r"^\$\.workflow: this context was saved from 'somewhere:Else', not from "
        r"'tests\.test_context_compat:Echo', and its run can only resume in the workflow that "
        r"saved it$",
    ):
        Context.from_dict(Echo(), data)


@pytest.mark.parametrize(
    "data",
    [
        {"version": 2, "state": {}, "is_running": True, "workers": {}},
        {"state": {}, "is_running": False, "queues": {}, "in_progress": {}},
    ],
    ids=["v2", "v0"],
)
def test_a_context_saved_by_the_incumbent_is_named_as_such(data: dict[str, Any]) -> None:
    with pytest.raises(
        ContextSerdeError,
        match=r"^this context was saved by llama-index-workflows \(it has [a-z_, ]+\), whose "
        r"saved contexts anyflow cannot read: anyflow saves a run as version, workflow, store "
        r"and run",
    ):
        Context.from_dict(Echo(), data)


def test_a_version_that_is_not_a_number_is_not_called_newer() -> None:
    with pytest.raises(ContextSerdeError) as caught:
        Context.from_dict(Echo(), {"version": "x", "workflow": "a:B", "store": {}, "run": None})
    assert str(caught.value) == (
        "Cannot load serialized workflow context with version='x'; this anyflow reads "
        "version 1 contexts ($.version)"
    )


# The incumbent's state payloads and basic runtime internals.


def test_the_incumbents_state_payloads_are_refused_by_name() -> None:
    store = InMemoryStateStore(DictState())
    with pytest.raises(
        ContextSerdeError,
        match=r"^store\.to_dict\(serializer\) writes llama-index-workflows' state payload .*: "
        r"store\.to_dict\(\) gives the state as a dictionary",
    ):
        store.to_dict(JsonSerializer())
    assert store.to_dict() == {}
    with pytest.raises(
        ContextSerdeError, match=r"^StateStore\.from_dict\(\) reads llama-index-workflows'"
    ):
        InMemoryStateStore.from_dict({"store_type": "in_memory"}, JsonSerializer())
    with pytest.raises(
        ContextSerdeError, match=r"^parse_in_memory_state\(\) reads or writes llama-index"
    ):
        parse_in_memory_state({"state_data": {}})
    with pytest.raises(
        ContextSerdeError, match=r"^InMemorySerializedState\(\) reads or writes llama-index"
    ):
        InMemorySerializedState(state_data={})


def test_the_basic_runtimes_internals_import_and_refuse() -> None:
    from anyflow.plugins.basic import AsyncioAdapterQueues, BasicRuntime, setting_run_id

    assert BasicRuntime is not None
    with pytest.raises(
        NotImplementedError,
        match=r"^anyflow\.plugins\.basic\.AsyncioAdapterQueues is an internal of "
        r"llama-index-workflows with no counterpart in anyflow: .* a step reads its run's id as "
        r"ctx\.run_id",
    ):
        AsyncioAdapterQueues(run_id="r")
    with pytest.raises(NotImplementedError, match=r"^anyflow\.plugins\.basic\.setting_run_id "):
        setting_run_id("r")
    with pytest.raises(ImportError):
        from anyflow.plugins.basic import NoSuchName  # noqa: F401


# One event answers every wait it matches, as in llama-index-workflows.


class Branch(Event):
    name: str


class Approved(Event):
    name: str
    response: str


class ThreeApprovals(Workflow):
    @step
    async def fan_out(self, ev: StartEvent, ctx: Context) -> Branch | None:
        for name in ("a", "b", "c"):
            ctx.send_event(Branch(name=name))
        return None

    @step(num_workers=3)
    async def ask(self, ev: Branch, ctx: Context) -> Approved:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"approve {ev.name}?")
        )
        return Approved(name=ev.name, response=answer.response)

    @step
    async def gather(self, ev: Approved, ctx: Context) -> StopEvent | None:
        got = ctx.collect_events(ev, [Approved, Approved, Approved])
        if got is None:
            return None
        return StopEvent(
            result=sorted((e.name, e.response) for e in got if isinstance(e, Approved))
        )


async def test_one_answer_answers_every_wait_it_matches() -> None:
    async with BasicRuntime() as runtime:
        handler = ThreeApprovals().run(runtime=runtime)
        asked = 0
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                asked += 1
                if asked == 3:
                    break
        assert len(handler.ctx.pending_waits()) == 3
        handler.send_event(HumanResponseEvent(response="yes"))
        result = await handler
    assert result == [("a", "yes"), ("b", "yes"), ("c", "yes")]


class ThreeApprovalsOneSlot(ThreeApprovals):
    @step(num_workers=1)
    async def ask(self, ev: Branch, ctx: Context) -> Approved:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"approve {ev.name}?")
        )
        return Approved(name=ev.name, response=answer.response)


@pytest.mark.parametrize("flow", [ThreeApprovals, ThreeApprovalsOneSlot])
async def test_one_answer_sent_while_an_unscoped_stream_paused_answers_every_wait(
    flow: type[Workflow],
) -> None:
    # The incumbent's idiom: stream without a scope, answer once all three
    # questions are out, stop reading, await.  The stream paused the run (its
    # waiting steps stopped); the answer is held until they wait again (with
    # one slot, they go back to their waits one after the other).
    handler = flow(timeout=10).run()
    asked = 0
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            asked += 1
            if asked == 3:
                handler.ctx.send_event(HumanResponseEvent(response="yes"))
                break
    assert await handler == [("a", "yes"), ("b", "yes"), ("c", "yes")]


async def test_requirements_give_each_wait_its_own_answer() -> None:
    class Named(Workflow):
        @step
        async def fan_out(self, ev: StartEvent, ctx: Context) -> Branch | None:
            for name in ("a", "b"):
                ctx.send_event(Branch(name=name))
            return None

        @step(num_workers=2)
        async def ask(self, ev: Branch, ctx: Context) -> Approved:
            answer = await ctx.wait_for_event(
                HumanResponseEvent,
                waiter_event=InputRequiredEvent(prefix=ev.name),
                requirements={"branch": ev.name},
            )
            return Approved(name=ev.name, response=answer.response)

        @step
        async def gather(self, ev: Approved, ctx: Context) -> StopEvent | None:
            got = ctx.collect_events(ev, [Approved, Approved])
            if got is None:
                return None
            return StopEvent(result=sorted((e.name, e.response) for e in got))

    async with BasicRuntime() as runtime:
        handler = Named().run(runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response=f"ok {ev.prefix}", branch=ev.prefix))
        result = await handler
    assert result == [("a", "ok a"), ("b", "ok b")]
