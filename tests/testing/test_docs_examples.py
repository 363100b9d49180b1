"""The two examples of docs/testing.md: the fuzzer catches each buggy workflow
within hypothesis's default budget of 100 examples, the report it leaves
replays the failure, and the fixed workflow passes.

Hypothesis drives a synchronous property in a worker thread, and each example
runs its simulation back in the test's event loop (``anyio.from_thread``), so
the same test runs on asyncio and on trio."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import given, note, settings

from anyflow.testing import Schedule, simulate
from anyflow.testing.strategies import faults, schedules

from ..test_examples_docs import EXAMPLES, load

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.anyio

DEFAULT_BUDGET = settings(
    max_examples=100,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
    derandomize=True,  # the same examples every time: a search that cannot flake
)


async def run_property(prop: Callable[[], None]) -> None:
    await anyio.to_thread.run_sync(prop)


def simulated(*args: Any, **kwargs: Any) -> Any:
    """``simulate`` in the test's event loop, from hypothesis's thread (where
    the report is noted: hypothesis keeps its notes per thread)."""
    simulation = anyio.from_thread.run(lambda: simulate(*args, **kwargs))
    note(simulation.report())
    return simulation


async def test_the_fan_out_race_is_caught_and_replayed() -> None:
    basket = load("fuzz_fanout")
    prices = [1, 10, 100]
    assert await basket.RacyBasket().run(prices=prices) == 111  # an ordinary test passes

    @DEFAULT_BUDGET
    @given(schedule=schedules())
    def total_is_right(schedule: Schedule) -> None:
        assert simulated(basket.RacyBasket(), schedule=schedule, prices=prices).result == 111

    with pytest.raises(AssertionError) as caught:
        await run_property(total_is_right)
    report = "\n".join(getattr(caught.value, "__notes__", []))
    found = re.search(r"schedule=Schedule\(choices=\(([\d, ]*)\)\)", report)
    assert found is not None, report
    choices = tuple(int(c) for c in found.group(1).replace(" ", "").split(",") if c)
    # The reported schedule replays the failure, tick for tick.
    first = await simulate(basket.RacyBasket(), schedule=Schedule(choices), prices=prices)
    again = await simulate(basket.RacyBasket(), schedule=Schedule(choices), prices=prices)
    assert first.result != 111
    assert first.ticks == again.ticks

    @DEFAULT_BUDGET
    @given(schedule=schedules())
    def fixed_total_is_right(schedule: Schedule) -> None:
        assert simulated(basket.Basket(), schedule=schedule, prices=prices).result == 111

    await run_property(fixed_total_is_right)


async def test_a_race_behind_thirty_forced_decisions_is_caught_as_fast() -> None:
    """examples/fuzz_deep.py: the fan-in race behind ten sequential stages.
    Where only one thing can happen the schedule spends no choice, so the
    choices that break the shallow basket break the deep one too, and the
    search finds and shrinks the deep race as it does the shallow one."""
    shallow, deep = load("fuzz_fanout"), load("fuzz_deep")
    prices = [1, 10, 100]
    assert await deep.DeepRacyBasket().run(prices=prices) == 111  # an ordinary test passes

    for choices in [(0, 1), (1, 1), (0, 0, 1)]:
        flat = await simulate(shallow.RacyBasket(), schedule=Schedule(choices), prices=prices)
        behind = await simulate(deep.DeepRacyBasket(), schedule=Schedule(choices), prices=prices)
        assert behind.result == flat.result, choices
        assert behind.schedule.choices[: len(choices)] == choices
    assert len(behind.trace) > 30 + len(behind.schedule.choices)  # the forced ones

    @DEFAULT_BUDGET
    @given(schedule=schedules())
    def total_is_right(schedule: Schedule) -> None:
        assert simulated(deep.DeepRacyBasket(), schedule=schedule, prices=prices).result == 111

    with pytest.raises(AssertionError) as caught:
        await run_property(total_is_right)
    report = "\n".join(getattr(caught.value, "__notes__", []))
    found = re.search(r"schedule=Schedule\(choices=\(([\d, ]*)\)\)", report)
    assert found is not None, report
    choices = tuple(int(c) for c in found.group(1).replace(" ", "").split(",") if c)
    while choices and choices[-1] == 0:
        choices = choices[:-1]
    assert len(choices) <= 4, choices  # shrunk to a handful
    replayed = await simulate(deep.DeepRacyBasket(), schedule=Schedule(choices), prices=prices)
    assert replayed.result != 111


async def test_the_retry_timeout_double_charge_is_caught() -> None:
    checkout = load("fuzz_retry")
    gateway = checkout.Gateway()
    assert await checkout.Checkout(gateway).run(amount=25) == "charged 25"
    assert len(gateway.charges) == 1  # an ordinary test passes

    def charged_once(flow: type) -> Callable[[], None]:
        @DEFAULT_BUDGET
        @given(schedule=schedules(), faults=faults(max=2))
        def prop(schedule: Schedule, faults: tuple[Any, ...]) -> None:
            gateway = checkout.Gateway()
            simulation = simulated(flow(gateway), schedule=schedule, faults=faults, amount=25)
            if simulation.completed:
                assert len(gateway.charges) == 1, gateway.charges
            else:  # every attempt failed: the card may be charged, once at most
                assert len(gateway.charges) <= 1, gateway.charges

        return prop

    with pytest.raises(AssertionError, match="charge"):
        await run_property(charged_once(checkout.Checkout))
    await run_property(charged_once(checkout.SafeCheckout))


async def test_a_fault_at_a_resource_call_is_caught() -> None:
    """examples/fuzz_resources.py: faults drawn at the bank's calls, with no
    change to the workflow, find the second debit; the shrunk fault replays
    it; the keyed transfer keeps the money."""
    example = load("fuzz_resources")
    failing: list[tuple[Any, ...]] = []

    def money_is_kept(flow: type) -> Callable[[], None]:
        @DEFAULT_BUDGET
        @given(faults=faults(max=1, kinds=["error", "timeout", "crash"], calls=CALLS))
        def prop(faults: tuple[Any, ...]) -> None:
            bank = example.Bank()
            simulated(anyio.from_thread.run(example.with_bank, flow, bank), faults=faults)
            if sum(bank.balances.values()) != 100:
                failing.append(faults)
            assert sum(bank.balances.values()) == 100, bank.balances

        return prop

    with pytest.raises(AssertionError, match="ann"):
        await run_property(money_is_kept(example.Transfer))
    [shrunk] = failing[-1:]
    assert len(shrunk) == 1
    banks = [example.Bank(), example.Bank()]
    runs = [
        await simulate(await example.with_bank(example.Transfer, bank), faults=shrunk)
        for bank in banks
    ]
    assert banks[0].balances == banks[1].balances
    assert sum(banks[0].balances.values()) != 100
    assert runs[0].report() == runs[1].report()  # replayed, tick for tick
    failing.clear()
    await run_property(money_is_kept(example.SafeTransfer))
    assert failing == []


CALLS = ["bank.debit", "bank.credit"]


async def test_the_examples_run_as_scripts(anyio_backend_name: str) -> None:
    for name, expected in [
        ("fuzz_fanout", "fixed, 100 seeds: [111]"),
        ("fuzz_retry", "SafeCheckout, first answer late: charged 25 charges: 1"),
        ("fuzz_deep", "ordinary run: 111"),
        ("fuzz_resources", "Transfer, crash at bank.credit: moved 10 {'ann': 80, 'bob': 10}"),
        ("fuzz_deadline", "SafeAuction, a bid at 30 s, the bid first: 5"),
    ]:
        done = await anyio.run_process([sys.executable, str(EXAMPLES / f"{name}.py")])
        assert expected in done.stdout.decode().splitlines()
