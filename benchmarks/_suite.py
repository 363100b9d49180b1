"""The benchmark suite: which workloads, at which sizes, how often, and the
targets of issue #5.

Sizes and repetitions are chosen so that the default run stays under about
three minutes on a 2-core machine: the incumbent dominates the bill (one
fan-out of 2,000 events takes it 35-60 s there), anyflow's share is a few
seconds.  ``--quick`` divides the sizes by ten and takes two samples, to check
that everything runs, not to measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from . import anyflow_impl, durable, floor, incumbent_impl
from ._harness import INCUMBENT, Case, Impl, Measurement, Target, Timed

__all__ = ["WORKLOADS", "Settings", "build_cases", "build_targets", "floor_rows"]

WORKLOADS = ("chain", "fanout", "stream", "runs", "startup", "floor", durable.WORKLOAD)

BACKENDS = ("asyncio", "trio")
INCUMBENT_IMPL = Impl(INCUMBENT, "asyncio")
ANYFLOW_IMPLS = tuple(Impl("anyflow", backend) for backend in BACKENDS)
FLOOR_IMPLS = tuple(Impl("floor", backend) for backend in BACKENDS)


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of one benchmark run."""

    mode: str
    chain: int
    fanout: tuple[int, ...]
    stream: int
    runs: int
    startup: int
    floor: int
    journal: int
    """Steps of the chain run under each store (see ``durable``)."""
    reps: int
    """Samples per implementation and case (fewer for the expensive cases)."""
    budget_s: float
    """Seconds of samples after which an implementation is not sampled again."""

    @classmethod
    def full(cls) -> Settings:
        return cls("full", 2000, (125, 500, 2000), 20_000, 2000, 500, 20_000, 200, 5, 12.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls("quick", 200, (25, 50, 100), 2000, 200, 50, 2000, 20, 2, 2.0)


def _engines(name: str) -> dict[Impl, Timed]:
    """The incumbent's and anyflow's implementation of workload ``name``."""
    runners: dict[Impl, Timed] = {INCUMBENT_IMPL: getattr(incumbent_impl, name)}
    for impl in ANYFLOW_IMPLS:
        runners[impl] = getattr(anyflow_impl, name)
    return runners


def _warmup(size: int) -> int:
    return max(1, min(size, size // 10, 200))


def build_cases(s: Settings, only: Sequence[str] = ()) -> list[Case]:
    few = max(1, min(3, s.reps))  # for the cases where one incumbent sample takes seconds

    def engines(name: str, size: int, unit: str, reps: int, warmup: int | None = None) -> Case:
        warmup = _warmup(size) if warmup is None else warmup
        return Case(name, name, size, unit, _engines(name), reps, s.budget_s, warmup)

    def bare(name: str, fn: Timed, unit: str) -> Case:
        runners = dict.fromkeys(FLOOR_IMPLS, fn)
        return Case("floor", name, s.floor, unit, runners, s.reps, s.budget_s, _warmup(s.floor))

    memory: dict[Impl, Timed] = {INCUMBENT_IMPL: incumbent_impl.runs_memory}
    memory.update(dict.fromkeys(ANYFLOW_IMPLS, anyflow_impl.runs_memory))
    cases = [engines("chain", s.chain, "hop", s.reps)]
    cases += [
        engines("fanout", n, "event", s.reps if i == 0 else few, _warmup(s.fanout[0]))
        for i, n in enumerate(s.fanout)
    ]
    cases += [
        engines("stream", s.stream, "event", s.reps),
        replace(engines("runs", s.runs, "run", few), memory=memory),
        engines("startup", s.startup, "run", s.reps),
        bare("floor hop", floor.hop, "hop"),
        bare("floor yield", floor.checkpoint, "yield"),
        bare("floor stream", floor.stream, "event"),
    ]
    if not only or durable.WORKLOAD in only:  # built only if run: it probes PostgreSQL
        # One run of a few hundred ticks takes milliseconds: three times the samples.
        cases.append(
            durable.build_case(s.journal, BACKENDS, 3 * s.reps, s.budget_s, _warmup(s.journal))
        )
    return [c for c in cases if not only or c.workload in only]


# Targets.

Index = Mapping[tuple[str, int, str], Measurement]


def _times(ratio: float) -> str:
    """Enough digits that a miss never reads like the goal (2.97x is not "3.0x")."""
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _ratio(case: str, size: int, backend: str, at_least: float) -> Target:
    def evaluate(index: Index) -> tuple[str, bool] | None:
        incumbent = index.get((case, size, INCUMBENT_IMPL.label))
        ours = index.get((case, size, f"anyflow/{backend}"))
        if incumbent is None or ours is None:
            return None
        ratio = incumbent.median_us / ours.median_us
        return _times(ratio), ratio >= at_least

    return Target(
        f"{case} n={size:,}, {backend}: faster than the incumbent", f"≥ {at_least:g}x", evaluate
    )


def _growth(case: str, big: int, small: int, backend: str, at_most: float) -> Target:
    def evaluate(index: Index) -> tuple[str, bool] | None:
        at_big = index.get((case, big, f"anyflow/{backend}"))
        at_small = index.get((case, small, f"anyflow/{backend}"))
        if at_big is None or at_small is None:
            return None
        growth = at_big.median_us / at_small.median_us
        return _times(growth), growth <= at_most

    return Target(
        f"{case}, {backend}: anyflow per-event cost at n={big:,} / at n={small:,}",
        f"≤ {at_most:g}x",
        evaluate,
    )


def _memory(case: str, size: int, backend: str, at_most_kb: float) -> Target:
    def evaluate(index: Index) -> tuple[str, bool] | None:
        ours = index.get((case, size, f"anyflow/{backend}"))
        if ours is None or ours.bytes_per_unit is None:
            return None
        kb = ours.bytes_per_unit / 1000
        return f"{kb:.1f} kB", kb <= at_most_kb

    return Target(
        f"{case} n={size:,}, {backend}: anyflow peak memory per in-flight run",
        f"≤ {at_most_kb:g} kB",
        evaluate,
    )


def build_targets(s: Settings) -> list[Target]:
    """The goals of issue #5, at this run's sizes (so ``--quick`` checks them too)."""
    small, big = s.fanout[0], s.fanout[-1]
    return [
        _ratio("chain", s.chain, "asyncio", 8),
        _ratio("chain", s.chain, "trio", 5),
        _ratio("fanout", big, "asyncio", 50),
        _ratio("fanout", big, "trio", 50),
        _growth("fanout", big, small, "asyncio", 1.5),
        _growth("fanout", big, small, "trio", 1.5),
        _ratio("stream", s.stream, "asyncio", 2.5),
        _ratio("stream", s.stream, "trio", 2),
        _ratio("runs", s.runs, "asyncio", 4),
        _ratio("runs", s.runs, "trio", 3),
        _memory("runs", s.runs, "asyncio", 15),
        _memory("runs", s.runs, "trio", 15),
        _ratio("startup", s.startup, "asyncio", 4),
        _ratio("startup", s.startup, "trio", 3),
    ]


def floor_rows(measurements: Sequence[Measurement]) -> list[tuple[str, str, float, float]]:
    """(pattern, backend, anyflow µs, floor µs) for the patterns with a floor."""
    by_case = {(m.case.name, m.impl.label): m for m in measurements}
    rows = []
    for pattern, engine_case, floor_case in (
        ("chain hop / ping-pong round trip", "chain", "floor hop"),
        ("chain hop / one event-loop pass", "chain", "floor yield"),
        ("streamed event / stream item", "stream", "floor stream"),
    ):
        for backend in BACKENDS:
            ours = by_case.get((engine_case, f"anyflow/{backend}"))
            bare = by_case.get((floor_case, f"floor/{backend}"))
            if ours is not None and bare is not None:
                rows.append((pattern, backend, ours.median_us, bare.median_us))
    return rows
