"""``python -m benchmarks.profile WORKLOAD``: where one run's time goes.

Runs one workload of ``anyflow_impl`` (or ``--engine incumbent``) under
cProfile, after a warm-up run outside the profiler, and prints the top
functions by own time and by cumulative time.  cProfile (not a sampling
profiler) because the hot paths here are many tiny calls: call counts per hop
or per event are often the most telling column (divide ``ncalls`` by n).

``--memory`` instead samples traced memory once per event-loop iteration and
prints the allocation sites (file:line, net of what existed before the run) at
the moment the traced total peaked: what an in-flight run is made of.
``--gc`` reports how much of the run the garbage collector took.

Examples::

    python -m benchmarks.profile chain --backend trio
    python -m benchmarks.profile fanout -n 2000 --top 30
    python -m benchmarks.profile runs --memory
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
import tracemalloc
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio

from . import anyflow_impl, incumbent_impl
from ._harness import git_revision

if TYPE_CHECKING:
    from ._harness import Timed

DEFAULT_SIZES = {"chain": 2000, "fanout": 2000, "stream": 20_000, "runs": 2000, "startup": 500}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("workload", choices=sorted(DEFAULT_SIZES))
    parser.add_argument("-n", type=int, help="workload size (default: the benchmark's)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--engine", choices=("anyflow", "incumbent"), default="anyflow")
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    parser.add_argument("--save", metavar="FILE", help="also write the raw profile here")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--memory", action="store_true", help="allocation sites at peak memory")
    mode.add_argument("--gc", action="store_true", help="time spent in garbage collection")
    args = parser.parse_args(argv)
    if args.engine == "incumbent" and args.backend != "asyncio":
        parser.error("the incumbent runs only on asyncio")
    module = anyflow_impl if args.engine == "anyflow" else incumbent_impl
    fn = getattr(module, args.workload)
    n = args.n or DEFAULT_SIZES[args.workload]
    print(f"anyflow revision {git_revision()}; {args.engine}/{args.backend} {args.workload} n={n}")
    anyio.run(fn, max(1, n // 10), backend=args.backend)  # warm-up, not profiled
    gc.collect()
    if args.memory:
        return _memory(fn, n, args.backend, args.top)
    if args.gc:
        return _gc(fn, n, args.backend)
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed = anyio.run(fn, n, backend=args.backend)
    profiler.disable()
    print(f"{elapsed * 1e6 / n:.1f} µs per unit under the profiler (slower than unprofiled)\n")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    if args.save:
        stats.dump_stats(args.save)
    _by_layer(stats, n)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"=== top {args.top} by {key} ===")
        stats.sort_stats(key).print_stats(args.top)
    return 0


_LAYERS = (
    ("/anyflow/_core/", "anyflow reducer (anyflow/_core)"),
    ("anyflow._core.", "anyflow reducer (anyflow/_core)"),
    ("/anyflow/runtime/", "anyflow runtime (driver, adapters)"),
    ("/anyflow/", "anyflow API (context, events, handler, workflow)"),
    ("/benchmarks/", "events and steps of the workload"),
    ("benchmarks.", "events and steps of the workload"),
    ("anyflow.", "anyflow API (context, events, handler, workflow)"),
    ("/anyio/", "anyio"),
    ("/trio/", "trio"),
    ("/asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("methods trio.", "trio"),
    ("/outcome/", "trio"),
    ("methods outcome.", "trio"),
    ("/workflows/", "incumbent"),
    ("/pydantic", "pydantic"),
)


def _layer(filename: str, function: str) -> str:
    where = f"{filename} {function}"
    for marker, layer in _LAYERS:
        if marker in where:
            return layer
    return "other (builtins, stdlib)"


def _by_layer(stats: pstats.Stats, n: int) -> None:
    """Own time summed by layer: which part of the stack a unit of work pays for."""
    own: Counter[str] = Counter()
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, tottime, _, _) in raw.items():
        own[_layer(filename, function)] += tottime
    total = sum(own.values())
    print(f"=== own time by layer (profiled; total {total * 1e6 / n:.1f} µs per unit) ===")
    for layer, seconds in own.most_common():
        print(f"  {seconds / total:5.1%}  {seconds * 1e6 / n:7.1f} µs  {layer}")
    print()


def _memory(fn: Timed, n: int, backend: str, top: int) -> int:
    """Snapshot the heap at its traced peak, sampled once per loop iteration."""
    peak: dict[str, Any] = {"bytes": 0, "snapshot": None}

    async def sample() -> None:
        while True:
            await anyio.lowlevel.checkpoint()
            current = tracemalloc.get_traced_memory()[0]
            if current > peak["bytes"]:
                peak["bytes"] = current
                peak["snapshot"] = tracemalloc.take_snapshot()

    async def run() -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(sample)
            await fn(n)
            task_group.cancel_scope.cancel()

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    anyio.run(run, backend=backend)
    tracemalloc.stop()
    snapshot = peak["snapshot"]
    if snapshot is None:
        print("no sample was taken: the run never yielded to the event loop")
        return 1
    diff = snapshot.compare_to(before, "lineno")
    print(f"sampled peak: {peak['bytes'] / n / 1000:.1f} kB per unit (n={n}); top sites, per unit:")
    for stat in diff[:top]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / n:8.0f} B {stat.count_diff / n:6.1f} blocks  "
            f"{frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}"
        )
    return 0


def _gc(fn: Timed, n: int, backend: str) -> int:
    """How often the collector ran, per generation, and for how long."""
    started: list[float] = []
    pauses: list[tuple[int, float]] = []

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            pauses.append((info["generation"], time.perf_counter() - started.pop()))

    gc.callbacks.append(callback)
    try:
        elapsed = anyio.run(fn, n, backend=backend)
    finally:
        gc.callbacks.remove(callback)
    total = sum(p for _, p in pauses)
    counts = Counter(g for g, _ in pauses)
    print(f"run: {elapsed * 1e3:.1f} ms; in gc: {total * 1e3:.1f} ms ({total / elapsed:.0%})")
    for generation in sorted(counts):
        spent = sum(p for g, p in pauses if g == generation)
        print(f"  generation {generation}: {counts[generation]} collections, {spent * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
