"""The runtime API written the incumbent's way: ``Workflow(runtime=)``,
``wf.runtime``, ``registering()``, ``launch()``/``destroy()`` and their sync
forms, ``is_launched``, ``get_current_runtime()``, ``basic_runtime``."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.plugins import basic_runtime, get_current_runtime
from anyflow.plugins.basic import BasicRuntime as PluginsBasicRuntime
from anyflow.runtime import Runtime

pytestmark = pytest.mark.anyio


class Go(Event):
    pass


class Gated(Workflow):
    """Runs until a gate opens, so a test can watch it run in the background."""

    started: anyio.Event
    gate: anyio.Event

    @step
    async def first(self, ev: StartEvent, ctx: Context) -> Go:
        type(self).started.set()
        await type(self).gate.wait()
        return Go()

    @step
    async def second(self, ev: Go) -> StopEvent:
        return StopEvent(result="through")


def fresh_gated() -> type[Gated]:
    class G(Gated):
        started = anyio.Event()
        gate = anyio.Event()

    return G


def test_the_default_runtime_is_basic_runtime() -> None:
    assert PluginsBasicRuntime is BasicRuntime
    assert get_current_runtime() is basic_runtime
    assert fresh_gated()().runtime is basic_runtime
    assert basic_runtime.is_launched  # always ready, as in the incumbent
    assert not basic_runtime.is_hosting


def test_registering_sets_the_runtime_of_workflows_built_in_the_block() -> None:
    runtime = BasicRuntime()
    with runtime.registering() as current:
        assert current is runtime
        assert get_current_runtime() is runtime
        wf = fresh_gated()()
    assert wf.runtime is runtime
    assert get_current_runtime() is basic_runtime
    explicit = BasicRuntime()
    assert fresh_gated()(runtime=explicit).runtime is explicit


async def test_a_runtime_given_to_the_workflow_hosts_its_runs_in_the_background() -> None:
    flow = fresh_gated()
    async with BasicRuntime() as runtime:
        wf = flow(runtime=runtime)
        handler = wf.run()
        await flow.started.wait()  # the run goes on while this task waits elsewhere
        flow.gate.set()
        assert await handler == "through"


async def test_launch_and_destroy_bound_the_runs() -> None:
    flow = fresh_gated()
    runtime = BasicRuntime()
    await runtime.launch()
    try:
        assert runtime.is_hosting
        assert runtime.is_launched
        handler = flow(runtime=runtime).run()
        await flow.started.wait()
    finally:
        await runtime.destroy()
    assert not runtime.is_hosting
    # Leaving the runtime cancelled the run that was still going.
    assert handler.cancelled()
    await runtime.destroy()  # a second destroy does nothing


async def test_a_durable_runtime_is_launched_only_inside_its_block() -> None:
    runtime = DurableRuntime(MemoryStore())
    assert not runtime.is_launched
    async with runtime:
        assert runtime.is_launched
    assert not runtime.is_launched


def test_launch_sync_of_a_basic_runtime_has_nothing_to_do() -> None:
    runtime = BasicRuntime()
    runtime.launch_sync()
    runtime.destroy_sync()
    assert runtime.is_launched


def test_launch_sync_of_another_runtime_says_how_to_write_it() -> None:
    with pytest.raises(
        WorkflowRuntimeError,
        match=r"^DurableRuntime.launch_sync\(\) cannot work in anyflow: .* `async with runtime:`",
    ):
        DurableRuntime(MemoryStore()).launch_sync()


def test_a_runtime_written_to_the_incumbents_plugin_interface_fails_at_class_creation() -> None:
    with pytest.raises(
        TypeError, match=r"\.Legacy implements register, run_workflow: that is llama-index-work"
    ):

        class Legacy(Runtime):
            def register(self, workflow: Any) -> None: ...

            def run_workflow(self, *args: Any) -> None: ...


async def test_an_unentered_runtime_other_than_basic_refuses_to_start_runs() -> None:
    with pytest.raises(RuntimeError, match="async with DurableRuntime"):
        fresh_gated()(runtime=DurableRuntime(MemoryStore())).run()
