"""The ``journal`` workload: what a durable run pays per tick for its journal.

Why: ``DurableRuntime`` commits every tick to its store before the tick's
commands run, so the store's commit is on the path of every step.  The number
a user needs to pick a store is that cost per tick, next to the same run
without a journal.  So the same chain (``anyflow_impl.ChainFlow``, n steps)
runs under ``BasicRuntime`` (the baseline) and under ``DurableRuntime`` with
each store: ``MemoryStore``, ``SqliteStore`` at each durability level, and
``PostgresStore`` (left out, with the reason printed, if the server at
``ANYFLOW_BENCH_POSTGRES_URL`` cannot be reached or psycopg is missing).

How: one run per sample through the common harness (fresh ``anyio.run``,
warm-up, interleaved and rotated repetitions).  Each sample gets a fresh store
(a new SQLite file, a new PostgreSQL schema, dropped afterwards), opened and
primed before the clock starts: a runtime and its store live as long as the
process, so only the run is timed, from ``wf.run`` to its result, its claim and
its finish included.  After the clock stops, the run's tick records are read
back from the store (``claim`` of a finished run only reads), and a thin
wrapper around the store counts its ``append`` calls (the commits).

The incumbent has no counterpart to compare with: llama-index-workflows 2.26.1
has per-tick adapter hooks but no journal store in its core package (its
persistence is in the optional llama-agents-server, a workflow server), so the
report says so instead of showing a made-up comparison.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from anyflow.durable import (
    DurableRuntime,
    MemoryStore,
    Owner,
    PostgresStore,
    SqliteStore,
    Store,
    StoreDecorator,
)
from anyflow.runtime import BasicRuntime

from ._common import check
from ._harness import Case, Impl, fmt_us
from .anyflow_impl import ChainFlow

if TYPE_CHECKING:
    from ._harness import Measurement, Timed

__all__ = ["WORKLOAD", "build_case", "render_markdown", "to_json"]

WORKLOAD = "journal"
BASELINE = "BasicRuntime"
POSTGRES_URL = os.environ.get(
    "ANYFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class _Counted(StoreDecorator):
    """Passes every call to ``inner``, counting commits and the ticks they carry.

    ``create`` and ``append_and_finish`` are forwarded as they are (a
    ``StoreDecorator`` would split each into two commits), so the benchmark
    times the writes a run makes on the store itself.
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.appends = 0
        self.ticks = 0

    async def append(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        self.appends += 1
        self.ticks += len(ticks)
        await self.inner.append(run_id, owner, ticks, events, state, now, lease_until)

    async def create(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        self.appends += 1
        self.ticks += len(ticks)
        await self.inner.create(
            run_id, workflow, fingerprint, owner, ticks, events, state, now, lease_until
        )

    async def append_and_finish(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        status: str,
        outcome: str,
        now: float,
    ) -> None:
        self.appends += 1
        self.ticks += len(ticks)
        await self.inner.append_and_finish(
            run_id, owner, ticks, events, state, status, outcome, now
        )


# The stores.  Each factory gets a fresh temporary directory and returns the
# store and what to do (in a worker thread) once it is closed.

Factory = Callable[[str], tuple[Store, Callable[[], None] | None]]


def _memory(tmp: str) -> tuple[Store, Callable[[], None] | None]:
    return MemoryStore(), None


def _sqlite(durability: str) -> Factory:
    def make(tmp: str) -> tuple[Store, Callable[[], None] | None]:
        return SqliteStore(os.path.join(tmp, "journal.db"), durability=durability), None

    return make


def _postgres(tmp: str) -> tuple[Store, Callable[[], None] | None]:
    schema = f"anyflow_bench_{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    return PostgresStore(POSTGRES_URL, schema=schema), drop


@dataclass
class _Tally:
    """What the samples counted, by implementation label and n: the harness
    keeps only times, so ticks and commits per run are kept here."""

    ticks: defaultdict[tuple[str, int], list[int]]
    commits: defaultdict[tuple[str, int], list[int]]
    notes: list[str]


_tally = _Tally(defaultdict(list), defaultdict(list), [])


def _sampler(make: Factory | None, label: str) -> Timed:
    """One run of the chain of ``n`` steps under this configuration: its seconds."""

    async def sample(n: int) -> float:
        wf = ChainFlow()
        run_id = uuid.uuid4().hex
        if make is None:
            async with BasicRuntime() as basic:
                start = time.perf_counter()
                result = await wf.run(run_id=run_id, runtime=basic, n=n)
                elapsed = time.perf_counter() - start
            check(result == n, f"{label}: the chain ended at step {result!r}, not {n}")
            return elapsed
        with tempfile.TemporaryDirectory(prefix="anyflow-bench-") as tmp:
            inner, cleanup = make(tmp)
            store = _Counted(inner)
            try:
                async with DurableRuntime(store) as durable:
                    await durable.list_runs()  # connect, make the tables: off the clock
                    start = time.perf_counter()
                    result = await wf.run(run_id=run_id, runtime=durable, n=n)
                    elapsed = time.perf_counter() - start
                check(result == n, f"{label}: the chain ended at step {result!r}, not {n}")
                now = time.time()
                stored = await inner.claim(run_id, "", "", Owner.here(), now, now)
                ticks = len(stored.ticks)
                check(
                    stored.record.status == "completed" and ticks == store.ticks,
                    f"{label}: run {stored.record.status}, {ticks} tick records in the "
                    f"store, {store.ticks} appended",
                )
            finally:
                await store.aclose()
                if cleanup is not None:
                    await anyio.to_thread.run_sync(cleanup)
        _tally.ticks[label, n].append(ticks)
        _tally.commits[label, n].append(store.appends)
        return elapsed

    return sample


def _postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be measured, or None (and a note on the server)."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - PostgresStore needs it too
    except ImportError as exc:
        return f"{exc.name} is not installed (the postgres and test extras have it)"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            settings = [
                f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
                for name in ("synchronous_commit", "fsync")
            ]
            version = conn.info.server_version
    except psycopg.Error as exc:
        return f"cannot connect to {_redacted(POSTGRES_URL)}: {str(exc).strip()}"
    _tally.notes.append(
        f"PostgreSQL {version // 10000}.{version % 10000} at {_redacted(POSTGRES_URL)} "
        f"({', '.join(settings)}), a new schema per sample"
    )
    return None


def _redacted(url: str) -> str:
    """The URL without a password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _filesystem(path: str) -> str:
    """The file system ``path`` is on (``ext4 on /dev/vda``), from /proc/mounts."""
    path = os.path.realpath(path)
    best = ("", "unknown file system")
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                device, mount, kind = line.split()[:3]
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0]):
                    best = (mount, f"{kind} on {device}")
    except OSError:
        pass
    return best[1]


def build_case(size: int, backends: Sequence[str], reps: int, budget_s: float, warmup: int) -> Case:
    """The ``journal`` case: every configuration on every backend."""
    configs: dict[str, Factory | None] = {
        BASELINE: None,
        "MemoryStore": _memory,
        "SqliteStore off": _sqlite("off"),
        "SqliteStore normal": _sqlite("normal"),
        "SqliteStore full": _sqlite("full"),
        "PostgresStore": _postgres,
    }
    _tally.notes.clear()
    tmp = tempfile.gettempdir()
    _tally.notes.append(f"SQLite files (WAL mode) in {tmp}, {_filesystem(tmp)}")
    reason = _postgres_unavailable()
    if reason is not None:
        del configs["PostgresStore"]
        _tally.notes.append(f"PostgresStore skipped: {reason}")
        print(f"journal: PostgresStore skipped: {reason}", file=sys.stderr, flush=True)
    runners: dict[Impl, Timed] = {}
    for backend in backends:
        for engine, make in configs.items():
            impl = Impl(engine, backend)
            runners[impl] = _sampler(make, impl.label)
    return Case(WORKLOAD, WORKLOAD, size, "step", runners, reps, budget_s, warmup)


# Reporting.


@dataclass(frozen=True)
class _Row:
    m: Measurement
    ticks: int
    commits: int | None
    overhead_us: float | None
    """Per tick, against the baseline's median on the same backend."""
    times: float | None
    """The run's median / the baseline's median."""

    @property
    def per_tick_us(self) -> float:
        return statistics.median(self.m.samples_s) * 1e6 / self.ticks


def _rows(measurements: Sequence[Measurement]) -> list[_Row]:
    ours = [m for m in measurements if m.case.workload == WORKLOAD]
    baselines = {m.impl.backend: m for m in ours if m.impl.engine == BASELINE}
    rows = []
    for m in ours:
        size = m.case.size
        ticks = _tally.ticks.get((m.impl.label, size))
        if m.impl.engine == BASELINE:
            # Not journaled: the same ticks as the journaled runs of this backend.
            ticks = [
                t
                for (label, n), counted in _tally.ticks.items()
                if n == size and label.endswith(f"/{m.impl.backend}")
                for t in counted
            ]
        tick_count = int(statistics.median(ticks)) if ticks else size
        commits = _tally.commits.get((m.impl.label, size))
        base = baselines.get(m.impl.backend)
        overhead = times = None
        if base is not None and m is not base:
            base_s = statistics.median(base.samples_s)
            run_s = statistics.median(m.samples_s)
            overhead = (run_s - base_s) * 1e6 / tick_count
            times = run_s / base_s
        rows.append(
            _Row(
                m,
                tick_count,
                int(statistics.median(commits)) if commits else None,
                overhead,
                times,
            )
        )
    return rows


def _ms(seconds: float) -> str:
    return fmt_us(seconds * 1e3)


def render_markdown(measurements: Sequence[Measurement]) -> str:
    """The journaling-overhead table, or "" if the workload was not run."""
    rows = _rows(measurements)
    if not rows:
        return ""
    first = rows[0].m
    lines = [
        "",
        f"Durable runs: journaling overhead (`{WORKLOAD}`: a chain of {first.case.size:,} "
        f"steps, one run per sample, {len(first.samples_s)} samples; ticks per run counted "
        "from the run's tick records in the store; commits are the store's `create`, "
        "`append` and `append_and_finish` calls; "
        "overhead is (median run - median run without journal) / ticks):",
        "",
        "| runtime (store) | backend | samples | ticks / run | commits / run "
        "| median ms / run | min ms | max ms | median µs / tick | overhead µs / tick "
        "| vs no journal |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        s = r.m.samples_s
        lines.append(
            f"| {r.m.impl.engine} | {r.m.impl.backend} | {len(s)} | {r.ticks:,} "
            f"| {'—' if r.commits is None else f'{r.commits:,}'} "
            f"| {_ms(statistics.median(s))} | {_ms(min(s))} | {_ms(max(s))} "
            f"| {fmt_us(r.per_tick_us)} "
            f"| {'baseline' if r.overhead_us is None else fmt_us(r.overhead_us)} "
            f"| {'baseline' if r.times is None else f'{r.times:.1f}x'} |"
        )
    lines += [
        "",
        f"- {BASELINE}: no journal, the same chain; its ticks are the same as the "
        "journaled runs' (they are the workflow's, not the store's).",
        "- A durable run is created with its first batch (`create`) and finished with its "
        "last (`append_and_finish`): each is one commit, counted with the appends and on "
        "the clock.",
        *(f"- {note}" for note in _tally.notes),
        "- No incumbent row: llama-index-workflows 2.26.1 has no durable journal in "
        "process to compare with (per-tick adapter hooks, but no store behind them in "
        "its core package; its persistence is in the optional llama-agents-server).",
    ]
    return "\n".join(lines) + "\n"


def to_json(measurements: Sequence[Measurement]) -> dict[str, Any] | None:
    """The table's figures, or None if the workload was not run."""
    rows = _rows(measurements)
    if not rows:
        return None
    return {
        "steps_per_run": rows[0].m.case.size,
        "notes": list(_tally.notes),
        "rows": [
            {
                "runtime": r.m.impl.engine,
                "backend": r.m.impl.backend,
                "samples_s": r.m.samples_s,
                "ticks_per_run": r.ticks,
                "commits_per_run": r.commits,
                "run_ms": {
                    "median": statistics.median(r.m.samples_s) * 1e3,
                    "min": min(r.m.samples_s) * 1e3,
                    "max": max(r.m.samples_s) * 1e3,
                },
                "us_per_tick": r.per_tick_us,
                "overhead_us_per_tick": r.overhead_us,
                "vs_no_journal": r.times,
            }
            for r in rows
        ],
    }
