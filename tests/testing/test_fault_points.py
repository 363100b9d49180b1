"""Fault points inside steps: ``await fault_point(name)`` between two side
effects is nothing in an ordinary run, and in a simulation a place where the
step pauses and a ``Fault(at=name)`` fails it, crashes the process or cancels
the run.  A payment step that charges, then records, is found charging twice
by an error or a crash between the two; charging with a key kept across
retries is not."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import given, settings

from anyflow import Context, StartEvent, StopEvent, Workflow, step
from anyflow.retry_policy import ConstantDelayRetryPolicy
from anyflow.testing import Fault, InjectedFault, fault_point, simulate
from anyflow.testing.strategies import faults

pytestmark = pytest.mark.anyio


class Bank:
    """The world outside: charges by key, each key once."""

    def __init__(self) -> None:
        self.charges: dict[str, int] = {}
        self.receipts: list[str] = []

    def charge(self, key: str, amount: int) -> None:
        self.charges.setdefault(key, amount)


class Pay(Workflow):
    def __init__(self, bank: Bank) -> None:
        super().__init__()
        self.bank = bank

    def key(self, ctx: Context) -> str:
        return ctx.idempotency_key()  # the bug: a new key for every attempt

    @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=3))
    async def pay(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.bank.charge(self.key(ctx), 25)
        await fault_point("charged")
        self.bank.receipts.append("25")
        return StopEvent(result="paid")


class SafePay(Pay):
    def key(self, ctx: Context) -> str:
        return ctx.idempotency_key(across_retries=True)


async def test_a_fault_point_does_nothing_in_an_ordinary_run() -> None:
    bank = Bank()
    assert await Pay(bank).run() == "paid"
    assert len(bank.charges) == 1
    assert bank.receipts == ["25"]


async def test_a_fault_point_is_a_place_where_the_step_pauses() -> None:
    simulation = await simulate(Pay(Bank()))
    assert "pay#0 from point 'charged'" in simulation.trace


async def test_an_error_between_two_side_effects_charges_twice() -> None:
    bank = Bank()
    simulation = await simulate(Pay(bank), faults=[Fault("error", step="pay", at="charged")])
    assert simulation.result == "paid"
    assert simulation.calls == {"pay": 2}
    assert len(bank.charges) == 2  # found: the retry charged again
    assert bank.receipts == ["25"]

    safe = Bank()
    simulation = await simulate(SafePay(safe), faults=[Fault("error", at="charged")])
    assert simulation.result == "paid"
    assert len(safe.charges) == 1


async def test_the_injected_error_comes_from_the_call() -> None:
    bank = Bank()
    faults = [Fault("error", at="charged", nth=n) for n in range(3)]
    simulation = await simulate(Pay(bank), faults=faults)
    with pytest.raises(InjectedFault, match=r"^simulated fault at fault point 'charged'"):
        simulation.result  # noqa: B018 - raises
    assert len(bank.charges) == 3


async def test_a_crash_between_two_side_effects_is_resumed_from_the_journal() -> None:
    bank = Bank()
    simulation = await simulate(SafePay(bank), faults=[Fault("crash", at="charged")])
    assert simulation.result == "paid"
    assert "crash" in simulation.trace
    assert len(bank.charges) == 1  # the attempt ran again, with the same key
    assert bank.receipts == ["25"]  # what follows the point ran once, after the crash


async def test_a_cancel_at_a_fault_point_cancels_the_run() -> None:
    bank = Bank()
    simulation = await simulate(Pay(bank), faults=[Fault("cancel", at="charged")])
    assert "cancel" in simulation.trace
    assert not simulation.completed
    assert len(bank.charges) == 1


def test_a_timeout_fault_has_no_fault_point() -> None:
    with pytest.raises(ValueError, match=r"^Fault\('timeout', at='charged'\): a timeout fault"):
        Fault("timeout", at="charged")


async def test_hypothesis_finds_the_double_charge_at_the_fault_point() -> None:
    def charged_once(flow: type[Pay]) -> Any:
        @settings(max_examples=100, deadline=None, database=None, derandomize=True)
        @given(faults=faults(max=1, kinds=["error"], points=["charged"]))
        def prop(faults: tuple[Fault, ...]) -> None:
            bank = Bank()
            anyio.from_thread.run(lambda: simulate(flow(bank), faults=faults))
            assert len(bank.charges) == 1, bank.charges

        return prop

    with pytest.raises(AssertionError, match="25"):
        await anyio.to_thread.run_sync(charged_once(Pay))
    await anyio.to_thread.run_sync(charged_once(SafePay))
