"""The crash matrix: kill a durable run's process at every kind of moment, resume it.

Why: the durable runtime's promise is about processes that die without
warning, so each case kills a real process (``tests/durable/crash_child.py``)
with SIGKILL at one point of one workflow shape, then runs the same script
again on the same run id, and checks what a user would care about:

* the resumed run ends with the result of an uncrashed run;
* no step attempt whose result (completion or failure) was committed before
  the crash runs again: the journal left by the killed process names those
  attempts, and the ledger (each step's fsynced "external side effect", keyed
  by ``ctx.idempotency_key()``) shows who ran what;
* an attempt runs at most once per process and at most twice in all (once in
  the killed process, uncommitted, and once more after the resume);
* the resumed run performs the same attempts as an uncrashed run, and its
  retries wait their delay even across the crash.

The crash points are counted from an uncrashed run of the same shape, store
and backend, so that every case really kills its process mid-run.  The
children run in a small thread pool (they mostly wait on timers and fsync), so
the whole matrix takes a fraction of its serial time; the cases that pytest
collected are started when the first one needs its result.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from anyflow._core.commands import StartWorker
from anyflow._core.reducer import reduce
from anyflow._core.state import RunState
from anyflow._core.ticks import StepCompleted, StepFailed
from anyflow.durable._journal import decode_record
from anyflow.serialization import decode_tick
from tests.durable import crash_child

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
SHAPES = ("chain", "fanout", "hitl", "retry", "timer")
POINTS = ("before_commit", "after_commit", "in_step")
BACKENDS = ("asyncio", "trio")
WHEN = ("early", "late")
CHILD_TIMEOUT = 30.0
POOL_SIZE = 8


@attrs.frozen
class Case:
    store: str
    shape: str
    point: str
    when: str
    backend: str

    def __str__(self) -> str:
        return f"{self.store}-{self.shape}-{self.point}-{self.when}-{self.backend}"


def _cases() -> list[Case]:
    every = [
        Case("sqlite", shape, point, when, backend)
        for shape, point, when, backend in itertools.product(SHAPES, POINTS, WHEN, BACKENDS)
    ]
    # PostgreSQL: every crash point of every shape once, backends and moments alternating.
    some = [
        Case("postgres", shape, point, WHEN[(i // 2) % 2], BACKENDS[i % 2])
        for i, (shape, point) in enumerate(itertools.product(SHAPES, POINTS))
    ]
    return every + some


CASES = _cases()


def crash_at(point: str, when: str, reference: Child) -> int:
    """The N of ``point:N``: a third or two thirds into an uncrashed run, rounded up.

    Appends are counted from the reference run.  Their batching varies from
    run to run (fan-out: 11 to 13), but never below two thirds of that: the
    fan-out's collector has one worker, so each of its 8 results is committed
    in a batch of its own, after the start's and the split's.  Rounding up
    puts the timer shape's early crash right after the commit of its failed
    attempt, while its retry is pending.
    """
    total = reference.summary["steps" if point == "in_step" else "appends"]
    assert total >= 2, f"the uncrashed run has too few {point} points\n{reference.report()}"
    return -(-total // 3) if when == "early" else -(-2 * total // 3)


@attrs.frozen
class Child:
    """One finished process of ``crash_child``."""

    args: tuple[str, ...]
    pid: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        assert self.returncode == 0, self.report()
        result: dict[str, Any] = json.loads(self.stdout.splitlines()[-1])
        return result

    def report(self) -> str:
        return (
            f"`python -m tests.durable.crash_child {' '.join(self.args)}` (pid {self.pid}) "
            f"exited with {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


@attrs.frozen
class Outcome:
    """What one case saw: both processes, the journal left by the first, the ledger."""

    nth: int
    reference: Child
    first: Child
    journal: list[tuple[int, str]]
    second: Child | None
    ledger: list[dict[str, Any]]
    reference_ledger: list[dict[str, Any]]

    def report(self) -> str:
        """Everything a failed case saw, so that a failure seen once (on a
        loaded CI machine, say) can be understood from its log alone."""
        second = self.second.report() if self.second is not None else "(no resume)\n"
        lines = "".join(f"{seq}: {record[:200]}\n" for seq, record in self.journal)
        ledger = "".join(f"{json.dumps(line)}\n" for line in self.ledger)
        return (
            f"crash point {self.nth}; first process: {self.first.report()}"
            f"resumed process: {second}--- journal left by the first process\n{lines}"
            f"--- ledger\n{ledger}"
        )


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class Matrix:
    """Runs reference runs and crash cases in a thread pool, each once."""

    def __init__(self, root: Path, postgres_url: str | None) -> None:
        self.root = root
        self.postgres_url = postgres_url
        self.schema = f"anyflow_crash_{uuid.uuid4().hex[:12]}"
        self._pool = concurrent.futures.ThreadPoolExecutor(POOL_SIZE, "crash-matrix")
        self._lock = threading.Lock()
        self._references: dict[tuple[str, str, str], concurrent.futures.Future[Child]] = {}
        self._cases: dict[Case, concurrent.futures.Future[Outcome]] = {}

    # Where each run keeps its data.

    def _store(self, kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:{self.root / name}.db"
        assert self.postgres_url is not None
        return f"postgres:{self.postgres_url}#{self.schema}"

    def _read_journal(self, kind: str, name: str, run_id: str) -> list[tuple[int, str]]:
        if kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.root / f"{name}.db")) as conn:
                rows = conn.execute(
                    "SELECT seq, record FROM ticks WHERE run_id = ? ORDER BY seq", (run_id,)
                ).fetchall()
            return [(int(seq), str(record)) for seq, record in rows]
        import psycopg
        from psycopg import sql

        assert self.postgres_url is not None
        with psycopg.connect(self.postgres_url) as conn:
            query = sql.SQL("SELECT seq, record FROM {}.ticks WHERE run_id = %s ORDER BY seq")
            rows = conn.execute(query.format(sql.Identifier(self.schema)), (run_id,)).fetchall()
        return [(int(seq), str(record)) for seq, record in rows]

    # Running.

    def _child(self, *args: str) -> Child:
        command = [sys.executable, "-m", "tests.durable.crash_child", *args]
        with subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
                stderr += f"\n(killed by the test after {CHILD_TIMEOUT:g}s)"
            return Child(tuple(args), process.pid, process.returncode, stdout, stderr)

    def _run(
        self, shape: str, backend: str, store: str, run_id: str, ledger: Path, crash: str
    ) -> Child:
        return self._child(
            "--shape", shape, "--backend", backend, "--store", store,
            "--run-id", run_id, "--ledger", str(ledger), "--crash", crash,
        )  # fmt: skip

    def _reference(self, kind: str, shape: str, backend: str) -> Child:
        name = f"ref-{kind}-{shape}-{backend}"
        return self._run(
            shape, backend, self._store(kind, name), name, self.root / f"{name}.jsonl", "none"
        )

    def _case(self, case: Case) -> Outcome:
        reference = self.reference(case.store, case.shape, case.backend).result()
        nth = crash_at(case.point, case.when, reference)
        name = str(case)
        store = self._store(case.store, name)
        ledger = self.root / f"{name}.jsonl"
        first = self._run(case.shape, case.backend, store, name, ledger, f"{case.point}:{nth}")
        journal = self._read_journal(case.store, name, name) if first.returncode < 0 else []
        second = None
        if first.returncode == -signal.SIGKILL:
            second = self._run(case.shape, case.backend, store, name, ledger, "none")
        return Outcome(
            nth,
            reference,
            first,
            journal,
            second,
            read_ledger(ledger),
            read_ledger(self.root / f"ref-{case.store}-{case.shape}-{case.backend}.jsonl"),
        )

    def reference(self, kind: str, shape: str, backend: str) -> concurrent.futures.Future[Child]:
        with self._lock:
            key = (kind, shape, backend)
            if key not in self._references:
                self._references[key] = self._pool.submit(self._reference, *key)
            return self._references[key]

    def start(self, cases: list[Case]) -> None:
        """Start ``cases``, their reference runs first (a case waits for its
        reference in its pool thread: the references must never queue behind it)."""
        for case in cases:
            self.reference(case.store, case.shape, case.backend)
        for case in cases:
            self.outcome_future(case)

    def outcome_future(self, case: Case) -> concurrent.futures.Future[Outcome]:
        with self._lock:
            if case not in self._cases:
                self._cases[case] = self._pool.submit(self._case, case)
            return self._cases[case]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.postgres_url is not None:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                statement = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(statement.format(sql.Identifier(self.schema)))


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Matrix]:
    """Starts every collected case of this module at once."""
    wanted = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is sys.modules[__name__]
        and hasattr(item, "callspec")
        and isinstance(item.callspec.params.get("case"), Case)
    ]
    url = None
    if any(case.store == "postgres" for case in wanted):
        try:
            url = request.getfixturevalue("postgres_url")
        except pytest.skip.Exception:
            url = None  # the PostgreSQL cases skip themselves, with the reason
    runner = Matrix(tmp_path_factory.mktemp("crash-matrix"), url)
    runner.start([case for case in wanted if case.store == "sqlite" or url is not None])
    yield runner
    runner.close()


def journaled_attempts(
    shape: str, run_id: str, journal: list[tuple[int, str]]
) -> tuple[set[str], set[str]]:
    """The idempotency keys of the attempts the journal started, and of those
    whose result (completion or failure) it holds.

    The journal is folded through the reducer, as a resume does; each
    ``StartWorker`` names an attempt (step, event id, attempt number), and a
    ``StepCompleted``/``StepFailed`` of that worker commits it.
    """
    state = RunState.initial(crash_child.SHAPES[shape]()._spec)
    attempts: dict[int, str] = {}
    committed: set[str] = set()
    for position, (seq, text) in enumerate(journal):
        assert seq == position, f"the journal has a gap at {position}: {journal}"
        tick = decode_tick(decode_record(text, run_id, "tick", seq), f"$[{seq}]")
        state, commands = reduce(state, tick)
        for command in commands:
            if type(command) is StartWorker:
                delivery = command.delivery
                attempts[command.worker_id] = (
                    f"{run_id}:{command.step}:{delivery.event_id}:{delivery.attempt}"
                )
        if type(tick) in (StepCompleted, StepFailed):
            committed.add(attempts[tick.worker_id])
    return set(attempts.values()), committed


def attempts_per_step(ledger: list[dict[str, Any]]) -> collections.Counter[str]:
    """How many distinct attempts each step made."""
    return collections.Counter(step for step, _ in {(line["step"], line["key"]) for line in ledger})


def check_retry_delays(ledger: list[dict[str, Any]], delay: float) -> None:
    """Attempt a+1 of a delivery begins at least ``delay`` after every run of attempt a.

    An attempt's ledger line is written before its failure is committed, and
    its retry is due ``delay`` after that commit, even if the process died in
    between: a resumed run keeps its retries' deadlines (a resumed process
    starts well within the timer shape's delay of 1.5s, so a retry that the
    resume made due at once is caught).
    """
    ended: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    began: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for line in ledger:
        delivery = line["key"].rsplit(":", 1)[0]
        ended[(delivery, line["attempt"])].append(line["t"])
        began[(delivery, line["attempt"])].append(line["began"])
    for (delivery, attempt), times in ended.items():
        later = began.get((delivery, attempt + 1))
        if later:
            gap = min(later) - max(times)
            assert gap >= delay - 1e-3, (
                f"attempt {attempt + 1} of {delivery} began {gap:.3f}s after attempt "
                f"{attempt}, before its retry delay of {delay}s"
            )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_killed_run_resumes_without_repeating_committed_steps(
    case: Case, matrix: Matrix, request: pytest.FixtureRequest
) -> None:
    if case.store == "postgres":
        request.getfixturevalue("postgres_url")  # skips, with the reason, if unreachable
    outcome = matrix.outcome_future(case).result()
    assert outcome.reference.summary["result"] == crash_child.RESULTS[case.shape]
    first, second = outcome.first, outcome.second
    crash = f"{case.point}:{outcome.nth}"
    if first.returncode == 0:
        pytest.fail(f"invalid case: {crash} is past the end of the run\n{first.report()}")
    assert first.returncode == -signal.SIGKILL, first.report()
    assert second is not None
    assert second.returncode == 0, f"the resume after {crash} failed\n{second.report()}"
    result = second.summary["result"]
    assert result == crash_child.RESULTS[case.shape], second.report()
    # The resumed stream replays the question if it was asked, and a
    # recovered run does not ask again.
    expected_questions = 1 if case.shape == "hitl" else 0
    assert second.summary["questions"] == expected_questions, second.report()

    run_id = first.args[first.args.index("--run-id") + 1]
    started, committed = journaled_attempts(case.shape, run_id, outcome.journal)
    by_first = {line["key"] for line in outcome.ledger if line["pid"] == first.pid}
    by_second = {line["key"] for line in outcome.ledger if line["pid"] == second.pid}
    seen = outcome.report()
    assert {line["pid"] for line in outcome.ledger} <= {first.pid, second.pid}, seen
    # Write-ahead: an attempt runs only once the tick that started it is committed.
    unjournaled = by_first - started
    assert not unjournaled, f"attempts ran before their start was committed: {unjournaled}\n{seen}"
    # A committed result follows its side effect, so the killed process wrote it.
    assert committed <= by_first, f"committed, never run: {committed - by_first}\n{seen}"
    rerun = committed & by_second
    assert not rerun, f"attempts committed before the crash at {crash} ran again: {rerun}\n{seen}"

    per_pid = collections.Counter((line["pid"], line["key"]) for line in outcome.ledger)
    twice = {key: n for key, n in per_pid.items() if n > 1}
    assert not twice, f"attempts that ran more than once in one process: {twice}\n{seen}"
    overall = collections.Counter(line["key"] for line in outcome.ledger)
    often = {key: n for key, n in overall.items() if n > 2}
    assert not often, f"attempts that ran more than twice: {often}\n{seen}"

    # Same attempts as an uncrashed run: none lost, none added (e.g. a retry).
    assert attempts_per_step(outcome.ledger) == attempts_per_step(outcome.reference_ledger), seen
    if case.shape in crash_child.RETRY_DELAYS:
        check_retry_delays(outcome.ledger, crash_child.RETRY_DELAYS[case.shape])
