"""Helpers shared by the workload implementations (engine-neutral on purpose).

The ``runs`` workload is "n runs in flight at once in one task group" for both
engines; keeping the task-group scaffolding here means the two implementations
differ only in how one run is started, which is the thing being measured.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["BenchmarkError", "check", "in_flight", "peak_bytes_in_flight"]


class BenchmarkError(RuntimeError):
    """A workload produced a wrong answer: its timing must not be reported."""


def check(ok: bool, what: str) -> None:
    """Fail the benchmark loudly if a run's result is wrong.

    Not ``assert``: ``python -O`` would strip it and let a broken run be timed.
    """
    if not ok:
        raise BenchmarkError(what)


async def _run_all(n: int, one_run: Callable[[], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = []

    async def run_one() -> None:
        results.append(await one_run())

    async with anyio.create_task_group() as task_group:
        for _ in range(n):
            task_group.start_soon(run_one)
    return results


async def in_flight(n: int, one_run: Callable[[], Awaitable[Any]], expected: Any) -> float:
    """Start ``n`` runs at once in one task group; seconds until all have ended.

    Every task is spawned before any of them runs, so all ``n`` runs are in
    flight together, which is the server-like load this workload stands for.
    """
    start = time.perf_counter()
    results = await _run_all(n, one_run)
    elapsed = time.perf_counter() - start
    check(len(results) == n, f"{len(results)} of {n} runs returned")
    check(all(r == expected for r in results), f"a run returned something else than {expected!r}")
    return elapsed


async def peak_bytes_in_flight(
    n: int, one_run: Callable[[], Awaitable[Any]], expected: Any
) -> float:
    """Peak traced memory per run while ``n`` runs are in flight, in bytes.

    Measured in its own repetition because tracemalloc slows allocation-heavy
    code several times over and would distort any timing taken with it on.
    The workflow object is built by the caller before tracing starts, so only
    what a run costs is counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        results = await _run_all(n, one_run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check(len(results) == n, f"{len(results)} of {n} runs returned")
    check(all(r == expected for r in results), f"a run returned something else than {expected!r}")
    return (peak - baseline) / n
