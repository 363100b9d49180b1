"""Faults on the calls to a step's resources: the simulator hands a step its
resources wrapped, so every call to one of their methods is a fault site
(``Fault(kind, call="bank.debit")``) and every async call a point where the
step pauses, with no change to the workflow's code; an ordinary run hands
the step the resource itself.

Planted bugs, each found by hypothesis, shrunk, and replayed tick for tick:

* a transfer that debits, then credits, with a retry policy: a fault at
  either call (an error, a lost answer, a crash) makes the retry debit again;
* the same transfer with ``fault_point("debited")`` between the two side
  effects and no resource: a crash there does it too;
* two counters that read, then write, a count through an async resource:
  the pause at each call lets the search interleave them (a lost update).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import given, note, settings

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.resource import Resource
from anyflow.retry_policy import ConstantDelayRetryPolicy
from anyflow.testing import Fault, InjectedFault, Schedule, fault_point, simulate
from anyflow.testing.strategies import faults, schedules

pytestmark = pytest.mark.anyio

SEARCH = settings(
    max_examples=100, deadline=None, database=None, derandomize=True, report_multiple_bugs=False
)
FIXED = settings(SEARCH, max_examples=30)
"""For the fixed workflows: the bugs above are found within 30 examples."""


class Bank:
    """The world outside: two accounts; a key makes a call count once."""

    def __init__(self) -> None:
        self.balances = {"alice": 100, "bob": 0}
        self.done: set[str] = set()
        self.statements: list[str] = []

    async def debit(self, who: str, amount: int, key: str | None = None) -> None:
        if self._once(key, "debit"):
            self.balances[who] -= amount

    async def credit(self, who: str, amount: int, key: str | None = None) -> None:
        if self._once(key, "credit"):
            self.balances[who] += amount

    def statement(self, who: str) -> str:  # a plain method
        self.statements.append(who)
        return f"{who}: {self.balances[who]}"

    def _once(self, key: str | None, what: str) -> bool:
        if key is None:
            return True
        seen = f"{what}:{key}" in self.done
        self.done.add(f"{what}:{key}")
        return not seen

    @property
    def total(self) -> int:
        return sum(self.balances.values())


BANKS: list[Bank] = []


def bank() -> Bank:
    """The resource factory: the test's bank (the last one made)."""
    return BANKS[-1]


def fresh_bank() -> Bank:
    BANKS.append(Bank())
    return BANKS[-1]


Money = Annotated[Bank, Resource(bank)]
CALLS = ["bank.debit", "bank.credit"]


class Transfer(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=5, maximum_attempts=3))
    async def move(self, ev: StartEvent, ctx: Context, bank: Money) -> StopEvent:
        key = self.key(ctx)
        await bank.debit("alice", 10, key=key)
        await bank.credit("bob", 10, key=key)
        return StopEvent(result=bank.statement("bob"))

    def key(self, ctx: Context) -> str | None:
        return None  # the bug: a retry (or a resumed attempt) debits again


class SafeTransfer(Transfer):
    def key(self, ctx: Context) -> str | None:
        return ctx.idempotency_key(across_retries=True)  # each side effect once


async def test_an_ordinary_run_gets_the_resource_itself() -> None:
    seen: list[Any] = []

    class Peek(Workflow):
        @step
        async def look(self, ev: StartEvent, bank: Money) -> StopEvent:
            seen.append(bank)
            return StopEvent(result=isinstance(bank, Bank))

    made = fresh_bank()
    assert await Peek().run() is True
    assert seen == [made]
    assert seen[0] is made  # not wrapped outside a simulation

    simulation = await simulate(Peek())
    assert simulation.result is True  # isinstance holds
    assert seen[1] is not made
    assert seen[1] == made


async def test_each_call_to_a_resource_is_a_fault_site() -> None:
    made = fresh_bank()
    simulation = await simulate(Transfer())
    assert simulation.result == "bob: 10"
    assert made.balances == {"alice": 90, "bob": 10}
    assert simulation.resource_calls == {"bank.debit": 1, "bank.credit": 1, "bank.statement": 1}
    # An async call is a point where the step pauses; a plain one is not.
    assert "move#0 from call bank.debit" in simulation.trace
    assert "move#0 from call bank.credit" in simulation.trace
    assert not any("statement" in line for line in simulation.trace)


async def test_an_error_at_a_call_is_raised_and_the_call_not_made() -> None:
    made = fresh_bank()
    simulation = await simulate(Transfer(), faults=[Fault("error", call="bank.debit")])
    assert simulation.result == "bob: 10"  # retried
    assert simulation.calls == {"move": 2}
    assert made.balances == {"alice": 90, "bob": 10}

    made = fresh_bank()
    faults = [Fault("error", call="bank.debit", nth=n) for n in range(3)]
    simulation = await simulate(Transfer(), faults=faults)
    with pytest.raises(InjectedFault, match=r"^simulated fault: the call bank\.debit\(\) failed"):
        simulation.result  # noqa: B018 - raises
    assert made.balances == {"alice": 100, "bob": 0}


async def test_a_timeout_at_a_call_makes_it_and_loses_its_answer() -> None:
    made = fresh_bank()
    simulation = await simulate(Transfer(), faults=[Fault("timeout", call="bank.debit")])
    assert simulation.result == "bob: 10"
    assert made.balances == {"alice": 80, "bob": 10}  # debited twice

    made = fresh_bank()
    simulation = await simulate(SafeTransfer(), faults=[Fault("timeout", call="bank.debit")])
    assert simulation.result == "bob: 10"
    assert made.balances == {"alice": 90, "bob": 10}


async def test_a_plain_call_is_a_fault_site_too() -> None:
    made = fresh_bank()
    faults = [Fault("error", step="move", call="bank.statement")]
    simulation = await simulate(Transfer(), faults=faults)
    assert simulation.result == "bob: 20"  # the transfer ran twice
    assert made.statements == ["bob"]  # the failed call was not made
    assert made.total == 100


@pytest.mark.parametrize("call", ["bank.credit", "bank.statement"])
async def test_a_crash_at_a_call_resumes_the_run_from_its_journal(call: str) -> None:
    """At an async call (the step waits there) and at a plain one (the step's
    code unwinds to its attempt): either way the process dies before the call
    is made, and the resumed run runs the step again."""
    made = fresh_bank()
    simulation = await simulate(Transfer(), faults=[Fault("crash", call=call)])
    assert "crash" in simulation.trace
    assert simulation.completed
    assert made.balances["alice"] == 80  # debited before the crash, and again after it
    assert made.statements == ["bob"]

    made = fresh_bank()
    simulation = await simulate(SafeTransfer(), faults=[Fault("crash", call=call)])
    assert simulation.completed
    assert made.balances == {"alice": 90, "bob": 10}


@pytest.mark.parametrize("call", ["bank.credit", "bank.statement"])
async def test_a_cancel_at_a_call_cancels_the_run_before_it(call: str) -> None:
    made = fresh_bank()
    simulation = await simulate(Transfer(), faults=[Fault("cancel", call=call)])
    assert "cancel" in simulation.trace
    assert not simulation.completed
    assert made.statements == []
    assert made.balances["alice"] == 90


def test_a_fault_names_one_site() -> None:
    with pytest.raises(ValueError, match=r"^Fault\('error', at='x', call='bank.debit'\): a fault"):
        Fault("error", at="x", call="bank.debit")
    with pytest.raises(ValueError, match=r"^Fault\('crash', call='bank\.'\): name the call"):
        Fault("crash", call="bank.")


async def search(prop: Any) -> None:
    with pytest.raises(AssertionError):
        await anyio.to_thread.run_sync(prop)


async def test_hypothesis_finds_the_double_debit_at_a_resource_call() -> None:
    """No fault point in the code: the faults are drawn at the bank's calls."""
    failing: list[tuple[Fault, ...]] = []

    def money_is_kept(flow: type[Transfer]) -> Any:
        @(SEARCH if flow is Transfer else FIXED)
        @given(faults=faults(max=1, kinds=["error", "timeout", "crash"], calls=CALLS))
        def prop(faults: tuple[Fault, ...]) -> None:
            made = fresh_bank()
            simulation = anyio.from_thread.run(lambda: simulate(flow(), faults=faults))
            note(simulation.report())
            if made.total != 100:
                failing.append(faults)
            assert made.total == 100, made.balances

        return prop

    await search(money_is_kept(Transfer))
    shrunk = failing[-1]  # hypothesis runs the shrunk example last
    assert len(shrunk) == 1
    assert shrunk[0].call in ("bank.debit", "bank.credit")
    first = fresh_bank()
    one = await simulate(Transfer(), faults=shrunk)
    again = fresh_bank()
    two = await simulate(Transfer(), faults=shrunk)
    assert first.total != 100
    assert again.balances == first.balances
    assert one.report() == two.report()  # replayed identically, tick for tick

    failing.clear()
    await anyio.to_thread.run_sync(money_is_kept(SafeTransfer))
    assert failing == []


class Ledger:
    """A transfer's two side effects on the workflow's own object, each
    done once per key (None: every time)."""

    def __init__(self) -> None:
        self.alice, self.bob = 100, 0
        self.keys: set[str] = set()

    def debit(self, key: str | None) -> None:
        if self._once(f"debit {key}", key):
            self.alice -= 10

    def credit(self, key: str | None) -> None:
        if self._once(f"credit {key}", key):
            self.bob += 10

    def _once(self, what: str, key: str | None) -> bool:
        seen = what in self.keys
        self.keys.add(what)
        return key is None or not seen


class PointTransfer(Workflow):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    @step
    async def move(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.ledger.debit(self.key(ctx))
        await fault_point("debited")  # a crash here: debited, not credited
        self.ledger.credit(self.key(ctx))
        return StopEvent(result="moved")

    def key(self, ctx: Context) -> str | None:
        # The bug: the attempt that runs again after a crash debits again.
        # (Writing "debited" to ctx.store would not help: the store is
        # recorded with the journal, and a crash loses what the attempt
        # wrote to it.)
        return None


class KeyedPointTransfer(PointTransfer):
    def key(self, ctx: Context) -> str | None:
        return ctx.idempotency_key(across_retries=True)  # the same after a crash


async def test_hypothesis_finds_a_crash_between_two_side_effects() -> None:
    failing: list[tuple[Fault, ...]] = []

    def money_is_kept(flow: type[PointTransfer]) -> Any:
        @(SEARCH if flow is PointTransfer else FIXED)
        @given(faults=faults(max=2, kinds=["crash"], points=["debited"]))
        def prop(faults: tuple[Fault, ...]) -> None:
            ledger = Ledger()
            simulation = anyio.from_thread.run(lambda: simulate(flow(ledger), faults=faults))
            note(simulation.report())
            assert simulation.completed
            if ledger.alice + ledger.bob != 100:
                failing.append(faults)
            assert ledger.alice + ledger.bob == 100, (ledger.alice, ledger.bob)

        return prop

    await search(money_is_kept(PointTransfer))
    shrunk = failing[-1]
    assert shrunk in ((Fault("crash", at="debited"),), (Fault("crash", step="move", at="debited"),))
    ledgers = [Ledger(), Ledger()]
    runs = [await simulate(PointTransfer(ledger), faults=shrunk) for ledger in ledgers]
    assert [(ledger.alice, ledger.bob) for ledger in ledgers] == [(80, 10), (80, 10)]
    assert runs[0].report() == runs[1].report()

    failing.clear()
    await anyio.to_thread.run_sync(money_is_kept(KeyedPointTransfer))
    assert failing == []


class Counter:
    """An outside counter, read and written in two async calls."""

    def __init__(self) -> None:
        self.value = 0

    async def get(self) -> int:
        return self.value

    async def put(self, value: int) -> None:
        self.value = value

    async def add(self, n: int) -> None:
        self.value += n


COUNTERS: list[Counter] = []


def counter() -> Counter:
    return COUNTERS[-1]


class Visit(Event):
    pass


class Counted(Event):
    pass


class Visits(Workflow):
    @step
    async def arrive(self, ev: StartEvent, ctx: Context) -> Visit | None:
        for _ in range(2):
            ctx.send_event(Visit())
        return None

    @step(num_workers=2)
    async def count(self, ev: Visit, hits: Annotated[Counter, Resource(counter)]) -> Counted:
        await self.bump(hits)
        return Counted()

    async def bump(self, hits: Counter) -> None:
        await hits.put(await hits.get() + 1)  # the bug: a read, then a write

    @step
    async def total(self, ev: Counted, ctx: Context) -> StopEvent | None:
        if ctx.collect_events(ev, [Counted] * 2) is None:
            return None
        return StopEvent(result=counter().value)


class AtomicVisits(Visits):
    async def bump(self, hits: Counter) -> None:
        await hits.add(1)


async def test_hypothesis_interleaves_steps_at_resource_calls() -> None:
    """Between a step's two calls to the counter, the other worker may go:
    the schedule search finds the lost update an ordinary run never shows."""
    COUNTERS.append(Counter())
    assert await Visits().run() == 2
    failing: list[Schedule] = []

    def counts_every_visit(flow: type[Visits]) -> Any:
        @(SEARCH if flow is Visits else FIXED)
        @given(schedule=schedules())
        def prop(schedule: Schedule) -> None:
            COUNTERS.append(Counter())
            simulation = anyio.from_thread.run(lambda: simulate(flow(), schedule=schedule))
            note(simulation.report())
            if simulation.result != 2:
                failing.append(simulation.schedule)
            assert simulation.result == 2

        return prop

    await search(counts_every_visit(Visits))
    shrunk = failing[-1]
    assert 1 <= len(shrunk.choices) <= 3, shrunk
    COUNTERS.append(Counter())
    one = await simulate(Visits(), schedule=shrunk)
    COUNTERS.append(Counter())
    two = await simulate(Visits(), schedule=shrunk)
    assert one.result == two.result == 1
    assert one.report() == two.report()

    failing.clear()
    await anyio.to_thread.run_sync(counts_every_visit(AtomicVisits))
    assert failing == []
