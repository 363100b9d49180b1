"""How far the documented hypothesis search reaches: a measurement, not a test
(it takes a minute or two, so it is not part of the suite).

    python tests/testing/measure_reach.py [--searches 5] [--examples 300] [--backend trio]

For each workflow with a planted race (examples/fuzz_fanout.py's, and
examples/fuzz_deep.py's, where the race comes after thirty forced decisions),
runs independent searches of ``schedules()`` (hypothesis ``find`` with a
different random seed each) and prints, per search, how many examples it took
to find a failing schedule, and the number of choices of the shrunk one.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from random import Random
from typing import Any

import anyio
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from anyflow.testing import Schedule, simulate
from anyflow.testing.strategies import schedules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def search(make: Any, seed: int, examples: int, backend: str) -> tuple[int | None, int]:
    prices = [1, 10, 100]
    tried = 0
    found_at: int | None = None

    def fails(schedule: Schedule) -> bool:
        nonlocal tried, found_at
        tried += 1

        async def once() -> Any:
            return (await simulate(make(), schedule=schedule, prices=prices)).result

        failed = anyio.run(once, backend=backend) != sum(prices)
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
        shrunk = find(schedules(), fails, settings=budget, random=Random(seed))
    except NoSuchExample:
        return None, 0
    choices = list(shrunk.choices)
    while choices and choices[-1] == 0:
        choices.pop()
    return found_at, len(choices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    workflows = {
        "fan-in (fuzz_fanout)": load("fuzz_fanout").RacyBasket,
        "fan-in behind 10 stages (fuzz_deep)": load("fuzz_deep").DeepRacyBasket,
    }
    for name, make in workflows.items():
        results = [search(make, seed, args.examples, args.backend) for seed in range(args.searches)]
        found = [r for r in results if r[0] is not None]
        print(
            f"{name} on {args.backend}: found in {len(found)} of {args.searches} searches "
            f"of {args.examples} examples; examples to find: {[r[0] for r in results]}; "
            f"shrunk choices: {[r[1] for r in found]}"
        )


if __name__ == "__main__":
    main()
