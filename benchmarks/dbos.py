"""``python -m benchmarks dbos``: what a step costs when DBOS records it.

What: a chain of n steps (n = 200; ``--quick``: 50), the ``chain`` workload
(one step that returns the next event to itself until the n-th returns a
StopEvent), recorded in DBOS Transact with a SQLite file (as DBOS leaves it,
and switched to write-ahead logging) and with a PostgreSQL database as DBOS's
system database.  Reported per step: the
median time of a run / n, and the DBOS operations the run recorded (its rows
in ``operation_outputs``) / n.

Who:

* ``anyflow``: ``anyflow.dbos.DBOSRuntime(name="bench", database_url=URL)``
  running ``anyflow_impl.ChainFlow``, on anyflow's dbos (3.x).
* ``incumbent``: llama-agents-dbos's ``DBOSRuntime`` (its default
  configuration) running the same chain written for llama-index-workflows
  (``_dbos_incumbent.py``).  llama-agents-dbos requires dbos 2.x, so it runs
  in a venv of its own, ``.bench-venv-dbos`` at the repository's root (or
  ``ANYFLOW_BENCH_DBOS_VENV``), made on first use with ``python -m venv`` and
  pip (``INCUMBENT_REQUIREMENTS``).
* ``floor``: a bare DBOS workflow that awaits a trivial async ``@DBOS.step``
  n times: the least a recorded step costs, with no workflow engine; on both
  dbos versions (anyflow's and the incumbent's), so that what the version
  change does to DBOS itself is not credited to an engine.

How:

* Every sample is a process of its own (``python -m benchmarks._dbos_child``,
  with the interpreter of the engine's venv): DBOS is a process-wide
  singleton, and the incumbent cannot share a process with anyflow anyway.
  The child launches DBOS, runs the chain once with a few steps off the clock
  (connections, lazy imports, caches), times one run of n steps from its
  start to its result, checks the result, counts the run's DBOS operations
  (``DBOS.list_workflow_steps_async``), and prints JSON.  It also reports the
  process's CPU time over the run (all threads), which tells how much of a
  step is Python and how much is waiting for the database.
* Every target has a fresh system database of its own, used by all its
  samples: a new SQLite file, or a new PostgreSQL database
  ``anyflow_bench_<hex>`` on the server at ``ANYFLOW_BENCH_POSTGRES_URL``
  (dropped at the end).  Without a reachable server the PostgreSQL targets
  are left out, with the reason printed.
* Repetitions are interleaved (``for rep: for target: sample``), the order of
  the targets rotated each repetition, so slow drift of the machine hits every
  target alike.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import BenchmarkError
from ._harness import fmt_us, load_average, machine_info

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("ANYFLOW_BENCH_DBOS_VENV", ROOT / ".bench-venv-dbos"))
INCUMBENT_REQUIREMENTS = ("llama-agents-dbos==0.7.0", "dbos>=2.18,<3")
"""llama-agents-dbos 0.7.0 (the newest) declares ``dbos>=2.18.0`` but is
written against dbos 2 (pip would otherwise pick dbos 3)."""
POSTGRES_URL = os.environ.get(
    "ANYFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
INCUMBENT = "incumbent"
DATABASES = {"sqlite": "SQLite", "sqlite-wal": "SQLite (WAL)", "postgres": "PostgreSQL"}
"""DBOS's system databases measured.  ``sqlite-wal`` is a SQLite file switched to
write-ahead logging before DBOS opens it (``PRAGMA journal_mode=WAL``, which
stays with the file): DBOS 2.31 and 3.4 leave a new SQLite file in its default
rollback-journal mode, where every commit creates, syncs and deletes a journal
file; WAL is what a deployment on SQLite would choose."""
TARGETS = {"anyflow": 2.5, "ratio": 3.0}
"""Issue #9: anyflow at most 2.5 ms/step on SQLite, and at least 3x the
incumbent on both databases."""


@dataclass(frozen=True)
class Settings:
    mode: str
    steps: int
    samples: int
    warmup: int

    @classmethod
    def full(cls) -> Settings:
        return cls("full", 200, 5, 10)

    @classmethod
    def quick(cls) -> Settings:
        return cls("quick", 50, 2, 5)


@dataclass(frozen=True)
class Target:
    engine: str
    """``anyflow``, ``incumbent`` or ``floor``."""
    venv: str
    """``anyflow`` (this interpreter) or ``incumbent`` (``VENV``)."""
    database: str
    """``sqlite``, ``sqlite-wal`` or ``postgres`` (see ``DATABASES``)."""

    @property
    def key(self) -> str:
        return f"{self.engine}-{self.venv}-{self.database}"

    @property
    def python(self) -> str:
        return sys.executable if self.venv == "anyflow" else str(VENV / "bin" / "python")


@dataclass
class Result:
    target: Target
    url: str
    steps: int
    samples_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)
    ops_by_name: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ms_per_step(self) -> list[float]:
        return [s * 1e3 / self.steps for s in self.samples_s]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms_per_step)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu_s) * 1e3 / self.steps

    @property
    def ops_per_step(self) -> float:
        return statistics.median(self.ops) / self.steps

    @property
    def label(self) -> str:
        t = self.target
        dbos = self.versions.get("dbos", "?")
        if t.engine == "anyflow":
            return f"anyflow DBOSRuntime (dbos {dbos})"
        if t.engine == INCUMBENT:
            return f"llama-agents-dbos {self.versions.get('llama-agents-dbos', '?')} (dbos {dbos})"
        return f"bare DBOS step (dbos {dbos})"


# The incumbent's venv.


def ensure_incumbent_venv(log: Any = sys.stderr) -> None:
    """Make ``VENV`` with the incumbent in it, unless it works already."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import llama_agents.dbos, dbos"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    print(f"dbos: making {VENV} for the incumbent (once)...", file=log, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *INCUMBENT_REQUIREMENTS],
        check=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if subprocess.run(probe).returncode != 0:
        raise BenchmarkError(f"the incumbent's venv {VENV} does not import llama_agents.dbos")


# Databases.


def _postgres_unavailable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the postgres and test extras have it)"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return f"cannot connect to {POSTGRES_URL}: {str(exc).strip()}"
    return None


def _postgres_server() -> str:
    import psycopg

    with psycopg.connect(POSTGRES_URL) as conn:
        version = conn.info.server_version
        settings = [
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("synchronous_commit", "fsync")
        ]
    return f"PostgreSQL {version // 10000}.{version % 10000} ({', '.join(settings)})"


def _make_wal(path: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        connection.close()
    if mode != "wal":
        raise BenchmarkError(f"SQLite refused WAL for {path}: journal_mode={mode}")


def _create_database() -> str:
    import psycopg
    from psycopg import sql

    name = f"anyflow_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_databases(names: Sequence[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _database_url(name: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


# Sampling.


def _sample(result: Result, settings: Settings) -> None:
    t = result.target
    command = [
        t.python,
        "-m",
        "benchmarks._dbos_child",
        t.engine,
        result.url,
        str(settings.steps),
        str(settings.warmup),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(
            f"{t.key}: the sample failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    result.samples_s.append(data["seconds"])
    result.cpu_s.append(data["cpu_seconds"])
    result.ops.append(data["ops"])
    result.ops_by_name = data["ops_by_name"]
    result.versions = data["versions"]


def measure(settings: Settings, targets: Sequence[Target], tmp: str) -> list[Result]:
    """Every target's samples, interleaved; its databases made here and dropped."""
    results = []
    databases: list[str] = []
    try:
        for t in targets:
            if t.database == "postgres":
                databases.append(_create_database())
                url = _database_url(databases[-1])
            else:
                path = os.path.join(tmp, t.key + ".db")
                if t.database == "sqlite-wal":
                    _make_wal(path)
                url = f"sqlite:///{path}"
            results.append(Result(t, url, settings.steps))
        for rep in range(settings.samples):
            shift = rep % len(results)
            for result in results[shift:] + results[:shift]:
                _sample(result, settings)
                print(
                    f"  {result.target.key:<28} sample {rep + 1}: "
                    f"{result.ms_per_step[-1]:.2f} ms/step, {result.ops[-1]} ops",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if databases:
            _drop_databases(databases)
    return results


# Reporting.


def _versus(r: Result, results: Sequence[Result], cpu: bool = False) -> float | None:
    """The incumbent's median / this row's, on the same database (of CPU time
    with ``cpu``)."""
    for other in results:
        if other.target.engine == INCUMBENT and other.target.database == r.target.database:
            return other.cpu_ms / r.cpu_ms if cpu else other.median_ms / r.median_ms
    return None


def _fmt_ratio(r: Result, ratio: float | None) -> str:
    if r.target.engine == INCUMBENT:
        return "baseline"
    if ratio is None:
        return "—"
    return f"**{ratio:.1f}x**" if r.target.engine == "anyflow" else f"{ratio:.1f}x"


def _targets(results: Sequence[Result]) -> list[tuple[str, str, str, bool]]:
    rows = []
    for r in results:
        if r.target.engine != "anyflow":
            continue
        db = r.target.database
        if db.startswith("sqlite"):
            goal = TARGETS["anyflow"]
            rows.append(
                (
                    f"anyflow DBOSRuntime on {DATABASES[db]}, per step",
                    f"≤ {goal} ms",
                    f"{r.median_ms:.2f} ms",
                    r.median_ms <= goal,
                )
            )
        ratio = _versus(r, results)
        if ratio is not None:
            rows.append(
                (
                    f"anyflow vs llama-agents-dbos on {_db_name(db)}",
                    f"≥ {TARGETS['ratio']:.0f}x",
                    f"{ratio:.1f}x",
                    ratio >= TARGETS["ratio"],
                )
            )
    return rows


def _db_name(database: str) -> str:
    return DATABASES[database]


def render_markdown(machine: dict[str, Any], run: dict[str, Any], results: Sequence[Result]) -> str:
    lines = [
        "# DBOS: per-step cost of a recorded chain",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}",
        f"- Python: {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()),
        f"- anyflow revision: {machine['anyflow_revision']}",
        f"- Mode: {run['mode']}; started {run['started']}; total {run['total_s']:.0f} s; "
        f"load average (1/5/15 min) at start "
        f"{' / '.join(map(str, machine['load_average_at_start'] or []))}, at end "
        f"{' / '.join(map(str, run['load_average_at_end'] or []))}",
        *(f"- {note}" for note in run["notes"]),
        "",
        f"A chain of {run['steps']} steps (one step returning the next event to itself), "
        f"one run per sample, each sample a fresh process after a warm-up run of "
        f"{run['warmup']} steps. ms / step: the run's time / {run['steps']} (median, min, "
        "max over the samples); CPU ms / step: the process's CPU time over the run (all "
        "threads) / steps, median; DBOS ops / step: the run's rows in `operation_outputs` "
        "/ steps; \"vs incumbent\": llama-agents-dbos's median / this row's, on the same "
        "database (how many times faster), of time and of CPU time (the steadier of the "
        "two when other processes compete for the cores).",
        "",
        "| implementation | database | samples | median ms / step | min | max "
        "| CPU ms / step | DBOS ops / step | vs incumbent | CPU vs incumbent |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for database in DATABASES:
        for r in results:
            if r.target.database != database:
                continue
            ms = r.ms_per_step
            versus, cpu = (_fmt_ratio(r, _versus(r, results, c)) for c in (False, True))
            lines.append(
                f"| {r.label} | {_db_name(database)} | {len(ms)} | {fmt_us(r.median_ms)} "
                f"| {fmt_us(min(ms))} | {fmt_us(max(ms))} | {fmt_us(r.cpu_ms)} "
                f"| {r.ops_per_step:.2f} | {versus} | {cpu} |"
            )
    lines += ["", "DBOS operations of one run, by function name:", ""]
    for r in results:
        if r.target.database == "sqlite" or not any(o.target.database == "sqlite" for o in results):
            names = ", ".join(f"`{k}` {v}" for k, v in sorted(r.ops_by_name.items()))
            lines.append(f"- {r.label}: {names}")
    checks = _targets(results)
    if checks:
        lines += [
            "",
            "Targets (issue #9), checked against this run:",
            "",
            "| target | goal | measured | met |",
            "|---|---|--:|:-:|",
            *(f"| {t} | {g} | {m} | {'yes' if ok else '**NO**'} |" for t, g, m, ok in checks),
        ]
    if run["mode"] != "full":
        lines += ["", f"_{run['mode']} run: few samples, the numbers are not meaningful._"]
    return "\n".join(lines) + "\n"


def to_json(machine: dict[str, Any], run: dict[str, Any], results: Sequence[Result]) -> Any:
    return {
        "machine": machine,
        "settings": run,
        "results": [
            {
                "target": r.target.key,
                "implementation": r.label,
                "engine": r.target.engine,
                "database": r.target.database,
                "versions": r.versions,
                "samples_s": r.samples_s,
                "cpu_s": r.cpu_s,
                "ms_per_step": {
                    "median": r.median_ms,
                    "min": min(r.ms_per_step),
                    "max": max(r.ms_per_step),
                },
                "cpu_ms_per_step": r.cpu_ms,
                "ops_per_run": r.ops,
                "ops_by_name": r.ops_by_name,
                "ops_per_step": r.ops_per_step,
                "speedup_vs_incumbent": _versus(r, results),
                "cpu_speedup_vs_incumbent": _versus(r, results, cpu=True),
            }
            for r in results
        ],
        "targets": [
            {"target": t, "goal": g, "measured": m, "met": ok} for t, g, m, ok in _targets(results)
        ],
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dbos",
        description="Per-step cost of a DBOS-recorded chain: anyflow's DBOSRuntime, "
        "llama-agents-dbos and a bare DBOS step, on SQLite and PostgreSQL.",
    )
    parser.add_argument("--quick", action="store_true", help="50 steps, 2 samples: a smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    ensure_incumbent_venv()
    machine = machine_info()
    machine["packages"] = {
        name: version
        for name, version in machine["packages"].items()
        if name in ("anyflow", "anyio", "attrs")
    }
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    notes = []
    databases = list(DATABASES)
    tmp_root = tempfile.gettempdir()
    notes.append(
        f"SQLite: a new file per target in {tmp_root}, in SQLite's default rollback-journal "
        "mode as DBOS leaves it, and switched to WAL beforehand (SQLite (WAL))"
    )
    reason = _postgres_unavailable()
    if reason is None:
        notes.append(f"PostgreSQL: {_postgres_server()}, a new database per target")
    else:
        databases.remove("postgres")
        notes.append(f"PostgreSQL skipped: {reason}")
        print(f"dbos: PostgreSQL skipped: {reason}", file=sys.stderr, flush=True)
    targets = [
        Target(engine, venv, database)
        for database in databases
        for engine, venv in (
            ("anyflow", "anyflow"),
            ("floor", "anyflow"),
            (INCUMBENT, "incumbent"),
            ("floor", "incumbent"),
        )
    ]
    print(
        f"dbos benchmark, {settings.mode} run ({settings.steps} steps, {settings.samples} "
        f"samples) on {machine['cpu']} ({machine['cores']} cores), {machine['python']}",
        file=sys.stderr,
        flush=True,
    )
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anyflow-bench-dbos-") as tmp:
        results = measure(settings, targets, tmp)
    run = {
        "mode": settings.mode,
        "started": started,
        "total_s": time.perf_counter() - clock,
        "load_average_at_end": load_average(),
        "steps": settings.steps,
        "samples": settings.samples,
        "warmup": settings.warmup,
        "notes": notes,
        "incumbent_venv": str(VENV),
    }
    markdown = render_markdown(machine, run, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dbos.md").write_text(markdown, encoding="utf-8")
    data = to_json(machine, run, results)
    (args.out / "dbos.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    print(f"written to {args.out / 'dbos.md'} and {args.out / 'dbos.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
