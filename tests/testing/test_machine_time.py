"""WorkflowStateMachine and time: rules send outside events at a time of the
simulation's clock (``self.send(event, at=t)``), drawn around the run's
deadlines (``self.times()``); ``time_passes`` chooses which of the things due
at one moment comes first; ``steps_go_on`` spends a drawn choice only where
two steps or more could go on.

The planted bug (examples/fuzz_deadline.py): an auction that closes 30 s
after it opens takes bids until then, waiting each time for the time left
after the last bid.  A bid at exactly 30 s that goes in before the closing
timer leaves 0 s, and ``wait_for_event(timeout=0)`` is refused: the auction
fails.  The machine finds it (a bid at the deadline, going in first) and
shrinks it to three rules; rules that could only send "now" never reach it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from anyflow.testing.strategies import WorkflowStateMachine

from ..test_examples_docs import load

if TYPE_CHECKING:
    from anyflow import Workflow

AUCTION = load("fuzz_deadline")
Auction, SafeAuction, Bid = AUCTION.Auction, AUCTION.SafeAuction, AUCTION.Bid
CLOSE = AUCTION.CLOSE


def machine(flow: type[Workflow], backend: str) -> type[WorkflowStateMachine]:
    """examples/fuzz_deadline.py's machine, for ``flow``, on ``backend``."""

    class Machine(AUCTION.AuctionMachine):  # type: ignore[misc, name-defined]
        auction = flow

    Machine.backend = backend
    return Machine


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=12,
    deadline=None,
    database=None,
    derandomize=True,  # the same search every time: found at example 80
    report_multiple_bugs=False,
    # Shrinking a failing program of twelve rules runs the machine a thousand
    # times more (over a minute); what it shrinks to is replayed below.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


FIXED = settings(SETTINGS, max_examples=50)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_machine_finds_the_bid_at_the_deadline(backend: str) -> None:
    with pytest.raises(AssertionError, match=r"the auction failed: ValueError\('timeout"):
        run_state_machine_as_test(machine(Auction, backend), settings=SETTINGS)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_fixed_auction_passes(backend: str) -> None:
    run_state_machine_as_test(machine(SafeAuction, backend), settings=FIXED)


def replayed(backend: str, flow: type[Workflow], choice: int) -> tuple[str, Any]:
    """What hypothesis shrinks the failure to (three rules: ``bid`` with a
    time drawn at 30.0, ``time_passes(choice=1)``, ``steps_go_on(choices=[])``),
    run again by hand."""
    run = machine(flow, backend)()
    try:
        assert run.deadlines == (CLOSE,)  # the run started: its wait is set
        run.send(Bid(amount=1, at=CLOSE), at=CLOSE)
        run.time_passes(choice)
        run.steps_go_on([])
        report = "; ".join(run._simulator._ctl.trace)
        try:
            outcome = run.result
        except Exception as exc:
            outcome = repr(exc)
        return report, outcome
    finally:
        run.teardown()


def test_the_shrunk_program_replays_identically_on_both_backends() -> None:
    failing = [replayed(backend, Auction, 1) for backend in ("asyncio", "trio") for _ in "ab"]
    assert len(set(failing)) == 1
    trace, outcome = failing[0]
    assert trace == (
        "auction#0 from start; time 30s: send Bid; auction#0 from resume; auction#0 from store"
    )
    assert outcome.startswith("ValueError('timeout must be a positive number")
    # The other order: the auction closes first, and the bid comes too late.
    assert replayed("trio", Auction, 0) == (
        "auction#0 from start; time 30s; auction#0 from resume; auction#0 from end",
        0,
    )
    assert replayed("trio", SafeAuction, 1)[1] == 1


def test_steps_go_on_spends_choices_only_where_there_is_a_choice() -> None:
    """examples/fuzz_deep.py's basket puts ten stages, one step at a time,
    before the fan-in race of examples/fuzz_fanout.py's: the same drawn
    choices give the same result, because a forced move spends none."""
    shallow, deep = load("fuzz_fanout"), load("fuzz_deep")

    def total(flow: type[Workflow], choices: list[int]) -> Any:
        class Basket(WorkflowStateMachine):
            backend: ClassVar[str] = "trio"

            def make_workflow(self) -> Workflow:
                return flow()

            def start_event(self) -> Any:
                return flow().start_event_class(prices=[1, 10, 100])

        run = Basket()
        try:
            run.steps_go_on(choices)
            return run.result
        finally:
            run.teardown()

    results = set()
    for choices in ([], [0, 1], [1, 1], [0, 0, 1], [2, 1, 1]):
        flat = total(shallow.RacyBasket, choices)
        behind = total(deep.DeepRacyBasket, choices)
        assert behind == flat, choices
        results.add(flat)
    assert len(results) > 1  # the choices reached the race


def test_a_bid_at_a_time_before_now_is_refused() -> None:
    run = machine(SafeAuction, "asyncio")()
    try:
        run.send(Bid(amount=1, at=10.0), at=10.0)
        run.time_passes(0)
        assert run.now == 10.0
        with pytest.raises(ValueError, match=r"^send\(Bid\(\.\.\.\), at=5\): the simulation's"):
            run.send(Bid(amount=2, at=5.0), at=5.0)
    finally:
        run.teardown()


def test_times_are_around_the_deadlines_and_never_before_now() -> None:
    run = machine(SafeAuction, "asyncio")()
    drawn: set[float] = set()

    @settings(max_examples=200, database=None, derandomize=True)
    @given(data=st.data())
    def draw(data: st.DataObject) -> None:
        drawn.add(data.draw(run.times()))

    try:
        draw()
        assert {CLOSE, CLOSE - 1, CLOSE + 1, run.now} <= drawn
        assert all(CLOSE - 1 <= t <= CLOSE + 1 for t in drawn - {run.now})
    finally:
        run.teardown()
