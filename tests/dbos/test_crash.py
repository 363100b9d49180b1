"""The crash matrix of DBOSRuntime: kill a run's process, resume the run in another.

Why: DBOSRuntime's promise is about processes that die without warning, so
each case runs a workflow in a real process (``tests/dbos/_child.py``) that
kills itself with SIGKILL at one point, then starts a new process (a new
DBOS executor) that resumes the run with ``wf.run(run_id=...)``, or, in the
``recover`` cases, a process started with the dead one's ``executor_id``,
which DBOS hands the run to at launch while the process only follows it with
``rt.attach()``.  Every case checks what a user would care about:

* the resumed run ends with the result of an uncrashed run (the ``none``
  cases run each workflow uncrashed, in the same matrix);
* no step attempt whose result (completion or failure) was recorded before
  the crash runs again: the record the killed process left in DBOS names
  those attempts, and the ledger (each step's fsynced "external side
  effect", keyed by ``ctx.idempotency_key()``) shows who ran what; only an
  attempt in flight at the kill may repeat, and the one killed inside a step
  does;
* every step attempt of an uncrashed run ran, and no other.

Crash points (see ``_child.py``): ``in_step:N`` kills inside the N-th step
invocation right after its side effect; ``after_step:N`` right after the run
recorded its N-th step result, before anything else happens; ``asked`` while
the run waits for a human's answer.  The cases run in a small thread pool
(each child mostly waits on DBOS), started when the first one needs its
outcome, each with a system database of its own: a SQLite file, or a new
PostgreSQL database dropped at the end.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import signal
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
from tests.dbos import flows

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 60.0
POOL_SIZE = 6

POINTS: dict[str, tuple[str, ...]] = {
    # 5 steps: killed inside s3; killed once s2's result is recorded.
    "chain": ("in_step:3", "after_step:2"),
    # split, then 6 squares on 3 workers and a collector: killed inside the
    # 6th step invocation (a square, with others in flight and some recorded);
    # killed once the split and two squares are recorded.
    "fanout": ("in_step:6", "after_step:3"),
    # killed while waiting for the answer; killed inside the step that got it.
    "approval": ("asked", "in_step:2"),
    # killed inside the failing first attempt; once its failure is recorded.
    "flaky": ("in_step:2", "after_step:2"),
}


@attrs.frozen
class Case:
    database: str
    flow: str
    crash: str
    resume: str = "run"
    """``run``: ``wf.run(run_id=...)`` in a new executor; ``recover``: the
    dead executor's id, the run handed over by DBOS, followed with attach."""

    def __str__(self) -> str:
        return f"{self.database}-{self.flow}-{self.crash.replace(':', '')}-{self.resume}"


def _cases() -> list[Case]:
    """Every crash point on SQLite, with an uncrashed run of each workflow;
    on PostgreSQL, one crash point per workflow, alternating.  Each database
    also has runs recovered at launch by the dead executor's id.  (Each
    process costs about a second of CPU, mostly importing DBOS: the whole
    matrix stays CI-sized.)"""
    sqlite = [
        Case("sqlite", flow, crash)
        for flow, crashes in POINTS.items()
        for crash in ("none", *crashes)
    ]
    postgres = [
        Case("postgres", flow, crashes[i % 2]) for i, (flow, crashes) in enumerate(POINTS.items())
    ]
    recovered = [
        Case("sqlite", "flaky", "after_step:2", "recover"),
        Case("sqlite", "approval", "asked", "recover"),
        Case("postgres", "approval", "asked", "recover"),
    ]
    return sqlite + postgres + recovered


CASES = _cases()


@attrs.frozen
class Child:
    """One finished child process."""

    args: tuple[str, ...]
    pid: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    @property
    def result(self) -> Any:
        assert self.returncode == 0, self.report()
        assert self.lines, self.report()
        assert "result" in self.lines[-1], self.report()
        return self.lines[-1]["result"]

    def report(self) -> str:
        return (
            f"`python -m tests.dbos._child {' '.join(self.args)}` (pid {self.pid}) exited "
            f"with {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def run_child(*args: str) -> Child:
    command = [sys.executable, "-m", "tests.dbos._child", *args]
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


@attrs.frozen
class Outcome:
    """What one case saw: both processes, the record the first left, the ledger."""

    first: Child
    record: list[str]
    second: Child | None
    ledger: list[dict[str, Any]]
    status: str | None
    """The run's DBOS workflow status once the last process exited."""


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_record(url: str, run_id: str) -> tuple[str | None, list[str]]:
    """The run's DBOS workflow status and the outputs of its recorded DBOS
    steps, read from outside the application, as an operator would."""
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=url)
    try:
        found = client.list_workflows(workflow_ids=[run_id])
        steps = client.list_workflow_steps(run_id)
    finally:
        client.destroy()
    status = found[0].status if found else None
    return status, [step["output"] for step in steps if isinstance(step["output"], str)]


class Matrix:
    """Runs the cases in a thread pool, each once, each in a database of its own."""

    def __init__(self, root: Path, postgres_url: str | None) -> None:
        self.root = root
        self.postgres_url = postgres_url
        self.databases: list[str] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(POOL_SIZE, "dbos-crash")
        self._lock = threading.Lock()
        self._cases: dict[Case, concurrent.futures.Future[Outcome]] = {}

    def _database(self, case: Case) -> str:
        if case.database == "sqlite":
            return f"sqlite:///{self.root / str(case)}.db"
        assert self.postgres_url is not None
        name = f"anyflow_dbos_crash_{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.databases.append(name)
        return f"{self.postgres_url.rpartition('/')[0]}/{name}"

    def _case(self, case: Case) -> Outcome:
        url = self._database(case)
        run_id = str(case)
        ledger = self.root / f"{case}.jsonl"
        common = ("--flow", case.flow, "--db", url, "--run-id", run_id, "--ledger", str(ledger))
        answer = ("--answer", "yes") if case.flow == "approval" else ()
        executor = ("--executor-id", f"dead-{run_id}") if case.resume == "recover" else ()
        first = run_child("run", *common, *answer, *executor, "--crash", case.crash)
        status, record = read_record(url, run_id)
        second = None
        if first.returncode == -signal.SIGKILL:
            command = "follow" if case.resume == "recover" else "run"
            second = run_child(command, *common, *answer, *executor)
            status, _ = read_record(url, run_id)
        return Outcome(first, record, second, read_ledger(ledger), status)

    def start(self, cases: list[Case]) -> None:
        for case in cases:
            self.outcome(case)

    def outcome(self, case: Case) -> concurrent.futures.Future[Outcome]:
        with self._lock:
            if case not in self._cases:
                self._cases[case] = self._pool.submit(self._case, case)
            return self._cases[case]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.postgres_url is not None and self.databases:
            from tests.dbos.conftest import drop_postgres_database

            for name in self.databases:
                drop_postgres_database(self.postgres_url, name)


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
    if any(case.database == "postgres" for case in wanted):
        try:
            url = request.getfixturevalue("postgres_url")
        except pytest.skip.Exception:
            url = None  # the PostgreSQL cases skip themselves, with the reason
    runner = Matrix(tmp_path_factory.mktemp("dbos-crash"), url)
    runner.start([case for case in wanted if case.database == "sqlite" or url is not None])
    yield runner
    runner.close()


def recorded_attempts(flow: str, run_id: str, record: list[str]) -> tuple[set[str], set[str]]:
    """The idempotency keys of the attempts the record started, and of those
    whose result (completion or failure) it holds.

    The record's ticks are folded through the reducer, as a resume does; each
    ``StartWorker`` names an attempt (step, event id, attempt number), and a
    ``StepCompleted``/``StepFailed`` of that worker records its result.
    """
    state = RunState.initial(flows.FLOWS[flow]()._spec)
    attempts: dict[int, str] = {}
    recorded: set[str] = set()
    for seq, text in enumerate(record):
        batch = decode_record(text, run_id, "batch", seq)
        for i, data in enumerate(batch.get("t", ())):
            tick = decode_tick(data, f"$[{seq}].t[{i}]")
            state, commands = reduce(state, tick)
            for command in commands:
                if type(command) is StartWorker:
                    delivery = command.delivery
                    attempts[command.worker_id] = (
                        f"{run_id}:{command.step}:{delivery.event_id}:{delivery.attempt}"
                    )
            if type(tick) in (StepCompleted, StepFailed):
                recorded.add(attempts[tick.worker_id])
    return set(attempts.values()), recorded


def attempts_per_step(ledger: list[dict[str, Any]]) -> dict[str, int]:
    """How many distinct attempts each step made."""
    keys = {(line["step"], line["key"]) for line in ledger}
    return dict(collections.Counter(step for step, _ in keys))


FINISHED = (
    "the run returned its result and its process exited, but its DBOS workflow is {}: "
    "a follower (rt.attach) in any other process now waits for it forever\n{}"
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_killed_run_resumes_in_another_process_without_repeating_recorded_steps(
    case: Case, matrix: Matrix, request: pytest.FixtureRequest
) -> None:
    if case.database == "postgres":
        request.getfixturevalue("postgres_url")  # skips, with the reason, if unreachable
    outcome = matrix.outcome(case).result()
    first, second, ledger = outcome.first, outcome.second, outcome.ledger
    if case.crash == "none":
        assert first.result == flows.RESULTS[case.flow]
        assert attempts_per_step(ledger) == flows.ATTEMPTS[case.flow], ledger
        assert outcome.status == "SUCCESS", FINISHED.format(outcome.status, first.report())
        return
    if first.returncode == 0:
        pytest.fail(f"invalid case: {case.crash} is past the end of the run\n{first.report()}")
    assert first.returncode == -signal.SIGKILL, first.report()
    assert second is not None
    assert second.returncode == 0, f"the resume after {case.crash} failed\n{second.report()}"
    assert second.result == flows.RESULTS[case.flow], second.report()
    assert outcome.status == "SUCCESS", FINISHED.format(outcome.status, second.report())

    started, recorded = recorded_attempts(case.flow, str(case), outcome.record)
    by_first = [line["key"] for line in ledger if line["pid"] == first.pid]
    by_second = [line["key"] for line in ledger if line["pid"] == second.pid]
    assert len(by_first) + len(by_second) == len(ledger), ledger
    # Write-ahead: an attempt runs only once the batch that started it is
    # recorded, and a recorded result follows its side effect.
    assert set(by_first) <= started, (by_first, started)
    assert recorded <= set(by_first), (recorded, by_first)
    rerun = recorded & set(by_second)
    assert not rerun, f"attempts recorded before the crash at {case.crash} ran again: {rerun}"
    # Only attempts in flight at the kill ran again, and the one killed inside its step did.
    assert set(by_first) & set(by_second) <= started - recorded
    if case.crash.startswith("in_step:"):
        assert by_first[-1] in by_second, (by_first, by_second)
    for keys in (by_first, by_second):
        twice = [key for key, n in collections.Counter(keys).items() if n > 1]
        assert not twice, f"attempts that ran twice in one process: {twice}"
    # Every step of an uncrashed run ran, and nothing more (e.g. a retry).
    assert attempts_per_step(ledger) == flows.ATTEMPTS[case.flow], ledger
    if case.flow == "approval":
        # The resumed stream shows the question asked before the crash.
        questions = [line for line in second.lines if "question" in line]
        assert questions == [{"question": "ship order 7?"}], second.report()
