"""Measuring, summarising and reporting; knows nothing about workflows.

How a case is measured, and why:

* Every sample is a fresh ``anyio.run`` on the implementation's backend, so no
  sample inherits another's event loop, tasks or garbage; the workload function
  times only its own body with ``time.perf_counter``.
* Each implementation first runs the case once at a small size (warm-up,
  discarded): imports, class-level caches and lazy schema building are paid
  there, not in the first sample.
* Repetitions are interleaved (``for rep: for impl: sample``), and the order of
  the implementations rotates from one repetition to the next, so slow drift of
  the machine (thermal, other processes) hits every implementation alike.
* An implementation stops being sampled once it has ``reps`` samples or its
  samples have used up the case's ``budget_s`` (it always gets one).  Only the
  incumbent's largest fan-out ever hits the budget: one sample of it takes half
  a minute, and it is hundreds of times slower than anyflow anyway, so more
  samples would not change the conclusion; the sample count is reported.
* ``gc.collect()`` runs before every sample so garbage of the previous sample
  is not collected on the next one's clock; the collector stays enabled during
  the sample because real programs run with it.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio

__all__ = [
    "Case",
    "Impl",
    "Measurement",
    "Target",
    "TargetResult",
    "fmt_us",
    "git_revision",
    "load_average",
    "machine_info",
    "render_markdown",
    "run_case",
    "to_json",
]

Timed = Callable[[int], Awaitable[float]]
"""A workload: takes the size n, returns elapsed seconds (or, for a memory
measurement, bytes per unit), after checking its own result."""


@dataclass(frozen=True)
class Impl:
    """Who runs a workload, and on which backend."""

    engine: str
    """``incumbent``, ``anyflow`` or ``floor``."""
    backend: str
    """``asyncio`` or ``trio``: the backend passed to ``anyio.run``."""

    @property
    def label(self) -> str:
        return f"{self.engine}/{self.backend}"


INCUMBENT = "incumbent"


@dataclass(frozen=True)
class Case:
    """One workload at one size, implemented by several ``Impl``."""

    workload: str
    """Name used by ``--only`` (several cases may share it: the fan-out sizes)."""
    name: str
    """Name in the report (``chain``, ``floor hop``, ...)."""
    size: int
    unit: str
    """What the per-unit cost is per: ``hop``, ``event``, ``run``, ..."""
    runners: Mapping[Impl, Timed]
    reps: int
    budget_s: float
    warmup_size: int
    memory: Mapping[Impl, Timed] = field(default_factory=dict)
    """Optional peak-memory measurement (bytes per unit), one untimed sample each."""


@dataclass
class Measurement:
    """Everything measured for one ``Impl`` on one ``Case``."""

    case: Case
    impl: Impl
    samples_s: list[float] = field(default_factory=list)
    bytes_per_unit: float | None = None

    def per_unit_us(self) -> list[float]:
        return [s / self.case.size * 1e6 for s in self.samples_s]

    @property
    def median_us(self) -> float:
        return statistics.median(self.per_unit_us())

    @property
    def min_us(self) -> float:
        return min(self.per_unit_us())

    @property
    def max_us(self) -> float:
        return max(self.per_unit_us())


def _sample(fn: Timed, size: int, backend: str) -> float:
    gc.collect()
    return anyio.run(fn, size, backend=backend)


def run_case(case: Case, log: TextIO = sys.stderr) -> list[Measurement]:
    """Warm up, then sample every implementation of ``case``, interleaved."""
    impls = list(case.runners)
    clock = time.perf_counter()
    for impl in impls:
        _sample(case.runners[impl], case.warmup_size, impl.backend)
    results = {impl: Measurement(case, impl) for impl in impls}
    for rep in range(case.reps):
        shift = rep % len(impls)
        for impl in impls[shift:] + impls[:shift]:
            m = results[impl]
            if m.samples_s and sum(m.samples_s) >= case.budget_s:
                continue
            m.samples_s.append(_sample(case.runners[impl], case.size, impl.backend))
    for impl, fn in case.memory.items():
        gc.collect()
        results[impl].bytes_per_unit = anyio.run(fn, case.size, backend=impl.backend)
    print(f"{case.name} n={case.size}: {time.perf_counter() - clock:.1f} s", file=log, flush=True)
    for m in results.values():
        memory = (
            "" if m.bytes_per_unit is None else f", {m.bytes_per_unit / 1000:.1f} kB/{case.unit}"
        )
        print(
            f"  {case.name:<13} n={case.size:<6} {m.impl.label:<18} "
            f"{fmt_us(m.median_us):>8} µs/{case.unit} median of {len(m.samples_s)}{memory}",
            file=log,
            flush=True,
        )
    return list(results.values())


# Targets.


@dataclass(frozen=True)
class TargetResult:
    target: str
    goal: str
    measured: str
    met: bool | None
    """None when the run did not measure what the target needs (``--only``)."""


@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked against the measurements of this run."""

    text: str
    goal: str
    evaluate: Callable[[Mapping[tuple[str, int, str], Measurement]], tuple[str, bool] | None]
    """Given the measurements by (case name, size, impl label): (measured, met),
    or None if something it needs was not measured."""

    def check(self, measurements: Iterable[Measurement]) -> TargetResult:
        index = {(m.case.name, m.case.size, m.impl.label): m for m in measurements}
        outcome = self.evaluate(index)
        if outcome is None:
            return TargetResult(self.text, self.goal, "not measured", None)
        return TargetResult(self.text, self.goal, outcome[0], outcome[1])


def speedup(m: Measurement, measurements: Iterable[Measurement]) -> float | None:
    """Incumbent median / ``m``'s median on the same case: "x times faster"."""
    for other in measurements:
        if other.case is m.case and other.impl.engine == INCUMBENT:
            return other.median_us / m.median_us
    return None


# The machine.


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The commit measured, marked when anyflow/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "anyflow"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes in anyflow/" if dirty else head


def machine_info() -> dict[str, Any]:
    """What a reader needs to compare this run with another one."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity is not None else os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {
            name: _version(name)
            for name in ("anyflow", "anyio", "trio", "llama-index-workflows", "pydantic", "attrs")
        },
        "anyflow_revision": git_revision(),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages: above the core count, something else was
    competing for the CPU and absolute times are inflated (ratios less so, since
    the repetitions are interleaved)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# Reporting.


def fmt_us(us: float) -> str:
    """Three significant figures or so, without scientific notation."""
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def _fmt_load(load: Sequence[float] | None) -> str:
    return "unknown" if load is None else " / ".join(f"{x:.2f}" for x in load)


def _fmt_ratio(m: Measurement, measurements: Sequence[Measurement]) -> str:
    if m.impl.engine == INCUMBENT:
        return "baseline"
    ratio = speedup(m, measurements)
    return "—" if ratio is None else f"**{ratio:.1f}x**"


def render_markdown(
    machine: Mapping[str, Any],
    settings: Mapping[str, Any],
    measurements: Sequence[Measurement],
    floor_rows: Sequence[tuple[str, str, float, float]],
    targets: Sequence[TargetResult],
) -> str:
    packages = machine["packages"]
    lines = [
        "# anyflow vs llama-index-workflows",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}",
        f"- Python: {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in packages.items()),
        f"- anyflow revision: {machine['anyflow_revision']}",
        f"- Mode: {settings['mode']}; started {settings['started']}; "
        f"total {settings['total_s']:.0f} s; load average (1/5/15 min) at start "
        f"{_fmt_load(machine['load_average_at_start'])}, at end "
        f"{_fmt_load(settings.get('load_average_at_end'))}",
        "",
        "Times are per unit (total time of a run / n), in microseconds; "
        "\"vs incumbent\" is the incumbent's median divided by this row's median "
        "(how many times faster).",
        "",
        "| workload | n | per | implementation | samples | median µs | min µs | max µs "
        "| vs incumbent |",
        "|---|--:|---|---|--:|--:|--:|--:|--:|",
    ]
    for m in measurements:
        lines.append(
            f"| {m.case.name} | {m.case.size:,} | {m.case.unit} | {m.impl.label} "
            f"| {len(m.samples_s)} | {fmt_us(m.median_us)} | {fmt_us(m.min_us)} "
            f"| {fmt_us(m.max_us)} | {_fmt_ratio(m, measurements)} |"
        )
    memory = [m for m in measurements if m.bytes_per_unit is not None]
    if memory:
        lines += [
            "",
            "Peak memory per in-flight run (tracemalloc peak / n, separate repetition; "
            "1 kB = 1000 bytes):",
            "",
            "| workload | n | implementation | kB per run | vs incumbent |",
            "|---|--:|---|--:|--:|",
        ]
        incumbent = next((m for m in memory if m.impl.engine == INCUMBENT), None)
        for m in memory:
            assert m.bytes_per_unit is not None
            if m.impl.engine == INCUMBENT or incumbent is None or incumbent.bytes_per_unit is None:
                versus = "baseline" if m.impl.engine == INCUMBENT else "—"
            else:
                versus = f"{incumbent.bytes_per_unit / m.bytes_per_unit:.1f}x less"
            lines.append(
                f"| {m.case.name} | {m.case.size:,} | {m.impl.label} "
                f"| {m.bytes_per_unit / 1000:.1f} | {versus} |"
            )
    if floor_rows:
        lines += [
            "",
            "Distance from the floor (the same pattern on bare anyio, same backend):",
            "",
            "| pattern | backend | anyflow µs | floor µs | anyflow / floor |",
            "|---|---|--:|--:|--:|",
        ]
        for pattern, backend, engine_us, floor_us in floor_rows:
            lines.append(
                f"| {pattern} | {backend} | {fmt_us(engine_us)} | {fmt_us(floor_us)} "
                f"| {engine_us / floor_us:.1f}x |"
            )
    if targets:
        lines += [
            "",
            "Targets (issue #5), checked against this run:",
            "",
            "| target | goal | measured | met |",
            "|---|---|--:|:-:|",
        ]
        for t in targets:
            met = {True: "yes", False: "**NO**", None: "—"}[t.met]
            lines.append(f"| {t.target} | {t.goal} | {t.measured} | {met} |")
    if settings["mode"] != "full":
        lines += [
            "",
            f"_{settings['mode']} run: sizes are reduced, the numbers are not meaningful._",
        ]
    return "\n".join(lines) + "\n"


def to_json(
    machine: Mapping[str, Any],
    settings: Mapping[str, Any],
    measurements: Sequence[Measurement],
    targets: Sequence[TargetResult],
) -> dict[str, Any]:
    return {
        "machine": dict(machine),
        "settings": dict(settings),
        "results": [
            {
                "workload": m.case.workload,
                "case": m.case.name,
                "n": m.case.size,
                "unit": m.case.unit,
                "engine": m.impl.engine,
                "backend": m.impl.backend,
                "samples_s": m.samples_s,
                "per_unit_us": {"median": m.median_us, "min": m.min_us, "max": m.max_us},
                "speedup_vs_incumbent": speedup(m, measurements),
                "peak_bytes_per_run": m.bytes_per_unit,
            }
            for m in measurements
        ],
        "targets": [
            {"target": t.target, "goal": t.goal, "measured": t.measured, "met": t.met}
            for t in targets
        ],
    }
