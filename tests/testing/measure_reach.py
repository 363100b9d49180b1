"""How far the documented hypothesis search reaches: a measurement, not a test
(it takes a few minutes, so it is not part of the suite).

    python tests/testing/measure_reach.py [--searches 5] [--examples 300] [--backend trio]

For each workflow with a planted bug, runs independent searches (hypothesis
``find`` with a different random seed each) and prints, per search, how many
examples it took to find a failing one, and the size of the shrunk one:

* schedules() for a race: examples/fuzz_fanout.py's fan-in, examples/fuzz_deep.py's
  (the race comes after thirty forced decisions), and tests/testing/
  test_resource_faults.py's lost update between two calls to a resource
  (size: the schedule's choices);
* faults(calls=...) for examples/fuzz_resources.py's transfer that debits
  again, and faults(points=...) for test_resource_faults.py's crash between
  two side effects (size: the number of faults).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from functools import partial
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any

import anyio
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from anyflow.testing import Fault, Schedule, simulate
from anyflow.testing.strategies import faults, schedules

if TYPE_CHECKING:
    from collections.abc import Callable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def search(
    strategy: Any,
    fails: Callable[[Any], bool],
    size: Callable[[Any], int],
    seed: int,
    examples: int,
) -> tuple[int | None, int]:
    tried = 0
    found_at: int | None = None

    def check(value: Any) -> bool:
        nonlocal tried, found_at
        tried += 1
        failed = fails(value)
        if failed and found_at is None:
            found_at = tried
        return failed

    budget = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    try:
        shrunk = find(strategy, check, settings=budget, random=Random(seed))
    except NoSuchExample:
        return None, 0
    return found_at, size(shrunk)


def choices(schedule: Schedule) -> int:
    made = list(schedule.choices)
    while made and made[-1] == 0:
        made.pop()
    return len(made)


def searches(backend: str) -> dict[str, tuple[Any, Callable[[Any], bool], Callable[[Any], int]]]:
    """(strategy, does this example fail, its size), by planted bug."""
    run = partial(anyio.run, backend=backend)
    prices = [1, 10, 100]
    fanout, deep, money = load("fuzz_fanout"), load("fuzz_deep"), load("fuzz_resources")
    planted = load_test("test_resource_faults")

    def basket(make: Any) -> Callable[[Schedule], bool]:
        async def once(schedule: Schedule) -> Any:
            return (await simulate(make(), schedule=schedule, prices=prices)).result

        return lambda schedule: run(once, schedule) != sum(prices)

    def debits_again(faults: tuple[Fault, ...]) -> bool:
        bank = money.Bank()

        async def once() -> None:
            await simulate(await money.with_bank(money.Transfer, bank), faults=faults)

        run(once)
        return sum(bank.balances.values()) != 100

    def crashes_between(faults: tuple[Fault, ...]) -> bool:
        ledger = planted.Ledger()
        run(lambda: simulate(planted.PointTransfer(ledger), faults=faults))
        return ledger.alice + ledger.bob != 100

    def loses_a_visit(schedule: Schedule) -> bool:
        planted.COUNTERS.append(planted.Counter())
        return run(lambda: simulate(planted.Visits(), schedule=schedule)).result != 2

    calls = faults(max=1, kinds=["error", "timeout", "crash"], calls=["bank.debit", "bank.credit"])
    return {
        "fan-in (fuzz_fanout)": (schedules(), basket(fanout.RacyBasket), choices),
        "fan-in behind 10 stages (fuzz_deep)": (schedules(), basket(deep.DeepRacyBasket), choices),
        "lost update between two resource calls": (schedules(), loses_a_visit, choices),
        "debit again after a fault at a bank call (fuzz_resources)": (calls, debits_again, len),
        "crash between two side effects (fault point)": (
            faults(max=2, kinds=["crash"], points=["debited"]),
            crashes_between,
            len,
        ),
    }


def load_test(name: str) -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    return importlib.import_module(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--only", default="", help="measure the bugs whose name holds this")
    args = parser.parse_args()
    for name, (strategy, fails, size) in searches(args.backend).items():
        if args.only not in name:
            continue
        results = [
            search(strategy, fails, size, seed, args.examples) for seed in range(args.searches)
        ]
        found = [r for r in results if r[0] is not None]
        print(
            f"{name} on {args.backend}: found in {len(found)} of {args.searches} searches "
            f"of {args.examples} examples; examples to find: {[r[0] for r in results]}; "
            f"shrunk to: {[r[1] for r in found]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
