"""WorkflowStateMachine: hypothesis drives a workflow that takes outside input,
on asyncio and on trio, and finds a lost update that ordinary runs never show."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from anyflow import Context, HumanResponseEvent, StartEvent, StopEvent, Workflow, step
from anyflow.testing.strategies import WorkflowStateMachine


class Reserve(HumanResponseEvent):  # sent by the caller
    qty: int = 1


class Shop(Workflow):
    """Reserves stock for orders that come from outside, two at a time."""

    @step
    async def open(self, ev: StartEvent) -> StopEvent | None:
        return None  # the shop stays open: orders come from outside

    @step(num_workers=2)
    async def reserve(self, ev: Reserve, ctx: Context) -> None:
        stock = await ctx.store.get("stock", default=3)
        if stock >= ev.qty:
            await ctx.store.set("stock", stock - ev.qty)  # the bug: not atomic
            async with ctx.store.edit_state() as state:
                state["reserved"] = state.get("reserved", 0) + ev.qty


class SafeShop(Shop):
    @step(num_workers=2)
    async def reserve(self, ev: Reserve, ctx: Context) -> None:
        async with ctx.store.edit_state() as state:
            stock = state.get("stock", 3)
            if stock >= ev.qty:
                state["stock"] = stock - ev.qty
                state["reserved"] = state.get("reserved", 0) + ev.qty


def machine(workflow: type[Shop], backend: str) -> type[WorkflowStateMachine]:
    class ShopMachine(WorkflowStateMachine):
        def make_workflow(self) -> Workflow:
            return workflow()

        @rule(qty=st.integers(1, 2))
        def order(self, qty: int) -> None:
            self.send(Reserve(qty=qty))

        @invariant()
        def never_more_reserved_than_stocked(self) -> None:
            assert self.store_get("reserved", 0) <= 3

    ShopMachine.backend = backend
    return ShopMachine


SETTINGS = settings(
    max_examples=200,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    report_multiple_bugs=False,
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_machine_finds_the_overbooking(backend: str) -> None:
    with pytest.raises(AssertionError, match=r"assert \d+ <= 3"):
        run_state_machine_as_test(machine(Shop, backend), settings=SETTINGS)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_fixed_shop_never_overbooks(backend: str) -> None:
    run_state_machine_as_test(machine(SafeShop, backend), settings=SETTINGS)
