"""A new user's warehouse workflow with a planted ordering bug, and the
simulator (``anyflow.testing``) that finds it where ordinary tests cannot.

``Warehouse`` takes orders for an item.  Express orders are reserved at once;
other orders are scored for fraud, then approved, then reserved.  ``reserve``
runs on four workers and does a read-modify-write of the stock in separate
store calls: it reads the stock, decides, and writes ``stock - 1``.  If two
reservations both read the stock before either writes it, both succeed with a
single item left: the warehouse sells an item twice.

In an ordinary run the express reservation is always done before the reviewed
order has been through two more steps, so the test passes (on asyncio and on
trio, thousands of runs in a row).  The simulator pauses the express
reservation between its read and its write while the reviewed order goes
through fraud scoring, approval and its own reservation: the item is sold
twice.  ``SafeWarehouse`` does the read-modify-write in one
``ctx.store.edit_state()`` block, atomic across the workers, and never oversells.

Hypothesis drives a synchronous property in a worker thread; each example runs
its simulation back in the test's event loop (``anyio.from_thread.run``), so
the test runs on both backends without nesting event loops, and a failing
property can be caught with ``pytest.raises``.

How fast it is found, measured with ``strategies.schedules()`` over 230 runs
of hypothesis with different seeds: the first oversold example came at a
median of 111 examples, at best 53, at worst 680; hypothesis' default budget
of 100 examples catches this bug only about half of the time, so the search
here has ``FUZZ_BUDGET`` = 1000 examples (measured again with five
searches, since the simulator's first option is the event loop's order: 59
to 106).  Shrinking the failure is turned off: it costs about 300 more
examples (median; up to 775), i.e. up to 12 s on asyncio in debug mode, where one simulated example takes about 15 ms (4 ms on
trio).  What hypothesis shrinks it to is in
``test_a_known_bad_schedule_replays_the_same_on_both_backends``.  Two seeds in
fifty oversell; the first is 5.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, NamedTuple

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import Phase, given, note, settings

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.testing import Schedule, Simulation, simulate
from anyflow.testing.strategies import schedules

# --- the workflow ------------------------------------------------------------


class Orders(StartEvent):
    stock: int
    express: list[str]
    reviewed: list[str]


class Reserve(Event):
    order: str


class NeedsReview(Event):
    order: str


class Scored(Event):
    order: str
    risk: int


class Outcome(Event):
    order: str
    reserved: bool


class Receipt(NamedTuple):
    reserved: tuple[str, ...]
    left: int


class Warehouse(Workflow):
    @step
    async def take_orders(self, ev: Orders, ctx: Context) -> Reserve | NeedsReview | None:
        await ctx.store.set("stock", ev.stock)
        await ctx.store.set("orders", len(ev.express) + len(ev.reviewed))
        for order in ev.express:
            ctx.send_event(Reserve(order=order))
        for order in ev.reviewed:
            ctx.send_event(NeedsReview(order=order))
        return None

    @step
    async def score(self, ev: NeedsReview) -> Scored:
        return Scored(order=ev.order, risk=len(ev.order))  # a fake fraud service

    @step
    async def approve(self, ev: Scored) -> Reserve | Outcome:
        if ev.risk > 20:
            return Outcome(order=ev.order, reserved=False)
        return Reserve(order=ev.order)

    @step(num_workers=4)
    async def reserve(self, ev: Reserve, ctx: Context) -> Outcome:
        # the bug: read, decide, write in separate store calls
        stock = await ctx.store.get("stock")
        if stock <= 0:
            return Outcome(order=ev.order, reserved=False)
        await ctx.store.set("stock", stock - 1)
        return Outcome(order=ev.order, reserved=True)

    @step
    async def receipt(self, ev: Outcome, ctx: Context) -> StopEvent | None:
        outcomes = ctx.collect_events(ev, [Outcome] * await ctx.store.get("orders"))
        if outcomes is None:
            return None
        reserved = tuple(sorted(o.order for o in outcomes if isinstance(o, Outcome) and o.reserved))
        return StopEvent(result=Receipt(reserved=reserved, left=await ctx.store.get("stock")))


class SafeWarehouse(Warehouse):
    @step(num_workers=4)
    async def reserve(self, ev: Reserve, ctx: Context) -> Outcome:
        # the fix: one atomic read-modify-write
        async with ctx.store.edit_state() as state:
            if state["stock"] <= 0:
                return Outcome(order=ev.order, reserved=False)
            state["stock"] -= 1
        return Outcome(order=ev.order, reserved=True)


ORDERS: dict[str, Any] = {"stock": 1, "express": ["express-1"], "reviewed": ["reviewed-1"]}
EXPECTED = Receipt(reserved=("express-1",), left=0)  # the express order is first
OVERSOLD = Receipt(reserved=("express-1", "reviewed-1"), left=0)


def check_not_oversold(receipt: Receipt, stock: int = ORDERS["stock"]) -> None:
    """The invariant: never more reservations than items, and the stock left
    accounts for every reservation."""
    assert len(receipt.reserved) <= stock, f"oversold: {receipt}"
    assert receipt.left == stock - len(receipt.reserved), f"lost update: {receipt}"


# --- helpers -------------------------------------------------------------------

FUZZ_BUDGET = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking, see above
    derandomize=True,  # the same search every time: it cannot flake in CI
)
SEEDS = 50


def simulated(workflow: Workflow, **kwargs: Any) -> Simulation:
    """``simulate`` in the test's event loop, called from hypothesis' thread.

    The report is noted here: ``simulate`` notes it itself only when it runs
    in the thread that runs the hypothesis example (hypothesis keeps its notes
    per thread), and here it runs in the event loop's thread."""
    simulation = anyio.from_thread.run(partial(simulate, workflow, **kwargs))
    note(simulation.report())
    return simulation


def reported_schedule(notes: str) -> Schedule:
    """The schedule that the simulation's report says replays the run."""
    found = re.search(
        r"replay with simulate\(\.\.\., schedule=Schedule\(choices=\(([\d, ]*)\)\)\)", notes
    )
    assert found is not None, notes
    return Schedule(tuple(int(c) for c in found.group(1).split(",") if c.strip()))


_bad_schedule_ticks: dict[str, tuple[Any, ...]] = {}


# --- the tests -----------------------------------------------------------------


async def test_an_ordinary_test_passes_the_bug_is_invisible() -> None:
    for _ in range(50):
        receipt = await Warehouse(timeout=10).run(**ORDERS)
        assert receipt == EXPECTED
        check_not_oversold(receipt)


async def test_the_simulators_default_order_is_the_ordinary_one() -> None:
    """Without a seed or schedule the simulator runs the steps in the order
    they were started: the same outcome as an ordinary run."""
    simulation = await simulate(Warehouse(), **ORDERS)
    assert simulation.completed
    assert simulation.result == EXPECTED


async def test_hypothesis_finds_the_oversell_and_its_report_replays_it() -> None:
    first_failure: list[int] = []  # which example oversold first
    examples = 0

    @FUZZ_BUDGET
    @given(schedule=schedules())
    def never_oversold(schedule: Schedule) -> None:
        nonlocal examples
        examples += 1
        receipt = simulated(Warehouse(), schedule=schedule, **ORDERS).result
        if receipt != EXPECTED and not first_failure:
            first_failure.append(examples)
        check_not_oversold(receipt)

    # Hypothesis runs the property in a worker thread (each example goes back
    # to this event loop), so the failure it re-raises can be caught here.
    with pytest.raises(AssertionError, match="oversold") as caught:
        await anyio.to_thread.run_sync(never_oversold)
    assert first_failure, "the property failed without an oversold example"
    assert first_failure[0] <= FUZZ_BUDGET.max_examples  # a median of 111, see above

    # The failure carries hypothesis' falsifying example and the simulation's
    # report; the reported schedule replays the oversell, tick for tick.
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "Falsifying example" in notes or "Failing test case" in notes, notes
    assert notes.count("anyflow simulation: replay with") == 1, notes
    schedule = reported_schedule(notes)
    first = await simulate(Warehouse(), schedule=schedule, **ORDERS)
    again = await simulate(Warehouse(), schedule=schedule, **ORDERS)
    assert first.result == again.result == OVERSOLD
    assert first.ticks == again.ticks
    assert first.report() == again.report()
    assert first.schedule == schedule
    assert first.report() in notes  # the noted report is the replay's report


async def test_a_seed_search_finds_the_oversell_and_the_seed_replays_it() -> None:
    for seed in range(SEEDS):
        simulation = await simulate(Warehouse(), seed=seed, **ORDERS)
        if simulation.result == OVERSOLD:  # others give the item to the reviewed order
            break
    else:
        pytest.fail(f"no seed in range({SEEDS}) oversold")
    assert simulation.result == OVERSOLD
    with pytest.raises(AssertionError, match="oversold"):
        check_not_oversold(simulation.result)
    assert f"replay with simulate(..., seed={seed})" in simulation.report()

    replay = await simulate(Warehouse(), seed=seed, **ORDERS)
    assert replay.result == OVERSOLD
    assert replay.ticks == simulation.ticks
    assert replay.report() == simulation.report()


async def test_a_known_bad_schedule_replays_the_same_on_both_backends(
    anyio_backend_name: str,
) -> None:
    """What hypothesis often shrinks the failure to: the first option for
    the first decision with a choice, then the second for four, which keeps the
    express reservation paused between its read and its write while the
    reviewed order is scored, approved and reserved.  The run is the same, tick
    for tick, on asyncio and on trio; the fixed workflow gives the item to one
    order."""
    schedule = Schedule((0, 1, 1, 1, 1))
    first = await simulate(Warehouse(), schedule=schedule, **ORDERS)
    again = await simulate(Warehouse(), schedule=schedule, **ORDERS)
    assert first.result == OVERSOLD
    assert first.ticks == again.ticks
    _bad_schedule_ticks[anyio_backend_name] = first.ticks
    if len(_bad_schedule_ticks) == 2:  # this test has run on the other backend too
        assert _bad_schedule_ticks["asyncio"] == _bad_schedule_ticks["trio"]
    fixed = await simulate(SafeWarehouse(), schedule=schedule, **ORDERS)
    check_not_oversold(fixed.result)


@settings(max_examples=200, deadline=None, database=None)
@given(schedule=schedules())
async def test_the_atomic_fix_passes_the_same_property(schedule: Schedule) -> None:
    """The documented form: anyio's pytest plugin runs each example in the
    test's event loop, and ``simulate`` notes its report itself."""
    check_not_oversold((await simulate(SafeWarehouse(), schedule=schedule, **ORDERS)).result)


async def test_the_atomic_fix_passes_every_seed() -> None:
    for seed in range(SEEDS):
        check_not_oversold((await simulate(SafeWarehouse(), seed=seed, **ORDERS)).result)
