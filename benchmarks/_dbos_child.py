"""One sample of ``python -m benchmarks dbos``, in a process of its own.

``benchmarks/dbos.py`` runs ``python -m benchmarks._dbos_child ENGINE URL N
WARMUP`` once per sample, from the repository's root, with the interpreter of
anyflow's venv (engines ``anyflow`` and ``floor``) or of the incumbent's
(``incumbent``, and ``floor`` again to see DBOS 2's floor): llama-agents-dbos
needs dbos 2.x and anyflow's venv has dbos 3, so they cannot share a process.
A process per sample also gives every sample a fresh DBOS singleton.  So this
module imports only the standard library and dbos at the top; each engine
imports what it needs, and nothing else of ``benchmarks`` is imported here.

The sample: configure DBOS on the system database at URL (the parent made it
fresh for this engine), run the chain once with ``WARMUP`` steps off the clock
(connections, lazy imports, caches), then time one run of ``N`` steps from its
start to its result, check the result, and count the run's DBOS operations
(its rows in ``operation_outputs``) with ``DBOS.list_workflow_steps_async``.
One JSON object on stdout: the run's seconds and the process's CPU seconds
over the same span (all its threads: DBOS works in some of its own),
operations (total and by function name) and the versions it ran with.

Engines:

* ``anyflow``: ``DBOSRuntime(name="bench", database_url=URL)`` running
  ``anyflow_impl.ChainFlow``.
* ``incumbent``: llama-agents-dbos's ``DBOSRuntime`` (default configuration)
  running ``_dbos_incumbent.ChainFlow``, the same chain.
* ``floor``: a DBOS workflow that awaits a trivial async ``@DBOS.step`` n
  times: the least a recorded step costs, with no engine around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import sys
import time
import uuid
from collections import Counter
from typing import Any

from dbos import DBOS, SetWorkflowID

__all__ = ["ENGINES", "main"]


def _quiet() -> None:
    """DBOS logs every launch, migration and shutdown at INFO, and sets its
    logger's level when it is configured: a filter stays."""
    logging.getLogger("dbos").addFilter(lambda record: record.levelno >= logging.WARNING)


def _config(url: str) -> Any:
    return {
        "name": "bench",
        "system_database_url": url,
        "application_version": "bench",
        "enable_otlp": False,
    }


async def _ops(run_id: str) -> dict[str, int]:
    steps = await DBOS.list_workflow_steps_async(run_id)
    return dict(Counter(str(s["function_name"]) for s in steps))


class _Clock:
    """Wall-clock and CPU seconds (the whole process's) of a ``with`` block."""

    wall = cpu = 0.0

    def __enter__(self) -> _Clock:
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self._start[0]
        self.cpu = time.process_time() - self._start[1]


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(what)


# The floor.  Registered at import: DBOS's decorators are global, once per process.


@DBOS.step(name="bench.noop")
async def _noop(i: int) -> int:
    return i + 1


@DBOS.workflow(name="bench.floor")
async def _floor_chain(n: int) -> int:
    i = 0
    while i < n:
        i = await _noop(i)
    return i


async def _floor_run(n: int) -> tuple[_Clock, str]:
    run_id = uuid.uuid4().hex
    with _Clock() as clock, SetWorkflowID(run_id):
        result = await _floor_chain(n)
    _check(result == n, f"floor: the chain ended at {result!r}, not {n}")
    return clock, run_id


async def floor(url: str, n: int, warmup: int) -> tuple[_Clock, dict[str, int]]:
    DBOS(config=_config(url))
    DBOS.launch()
    try:
        await _floor_run(warmup)
        clock, run_id = await _floor_run(n)
        return clock, await _ops(run_id)
    finally:
        DBOS.destroy()


async def anyflow(url: str, n: int, warmup: int) -> tuple[_Clock, dict[str, int]]:
    from anyflow.dbos import DBOSRuntime

    from .anyflow_impl import ChainFlow

    wf = ChainFlow()
    async with DBOSRuntime(name="bench", database_url=url) as runtime:
        result = await wf.run(run_id=uuid.uuid4().hex, runtime=runtime, n=warmup)
        _check(result == warmup, f"anyflow: the warm-up ended at {result!r}")
        run_id = uuid.uuid4().hex
        with _Clock() as clock:
            result = await wf.run(run_id=run_id, runtime=runtime, n=n)
        _check(result == n, f"anyflow: the chain ended at {result!r}, not {n}")
        return clock, await _ops(run_id)


async def incumbent(url: str, n: int, warmup: int) -> tuple[_Clock, dict[str, int]]:
    from llama_agents.dbos import DBOSRuntime

    from ._dbos_incumbent import ChainFlow

    DBOS(config=_config(url))
    runtime = DBOSRuntime()
    wf = ChainFlow(runtime=runtime, timeout=None)
    await runtime.launch()
    try:
        result = await wf.run(n=warmup)
        _check(result == warmup, f"incumbent: the warm-up ended at {result!r}")
        with _Clock() as clock:
            handler = wf.run(n=n)
            result = await handler
        _check(result == n, f"incumbent: the chain ended at {result!r}, not {n}")
        assert handler.run_id is not None
        return clock, await _ops(handler.run_id)
    finally:
        await runtime.destroy()


ENGINES = {"anyflow": anyflow, "incumbent": incumbent, "floor": floor}


def _versions() -> dict[str, str]:
    found = {}
    for dist in ("anyflow", "dbos", "llama-agents-dbos", "llama-index-workflows"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


def main(argv: list[str]) -> int:
    engine, url, n, warmup = argv[0], argv[1], int(argv[2]), int(argv[3])
    _quiet()
    clock, ops = asyncio.run(ENGINES[engine](url, n, warmup))
    print(
        json.dumps(
            {
                "engine": engine,
                "seconds": clock.wall,
                "cpu_seconds": clock.cpu,
                "ops": sum(ops.values()),
                "ops_by_name": ops,
                "versions": _versions(),
                "python": sys.version.split()[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
