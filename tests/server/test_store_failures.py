"""A store that fails does not take the server down, and nothing accepted is lost.

A child server on SQLite has its file-size limit cut to nothing with
``prlimit`` (every write then fails, as on a full disk) and lifted again:
meanwhile what it cannot record is refused with a 503 and ``Retry-After``,
``/health`` says why, reads go on, and once writes succeed the server resumes
the runs the failure stopped by itself.  A store that cannot be opened at all
stops ``python -m anyflow.server`` with one line, before it says it serves.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import pytest

from .polling import events_until, until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).parents[2]
FLOWS = ROOT / "tests" / "server" / "store_flows.py"
JSON = {"content-type": "application/json"}
ANSWER = {"event": {"type": "Answer", "value": {"key": "name", "response": "Ada"}}}

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def _command(store: str, backend: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "anyflow.server",
        f"{FLOWS}:ask_server",
        "--port",
        "0",
        "--backend",
        backend,
        "--store",
        store,
    ]


@pytest.fixture
def child(
    tmp_path: Path, backend: str
) -> Iterator[Callable[[], tuple[subprocess.Popen[str], str]]]:
    """Starts ``python -m anyflow.server`` on a SQLite file; (process, URL)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], str]:
        # Not a file for stderr: the file-size limit would cut the log too.
        proc = subprocess.Popen(
            _command(f"sqlite:///{tmp_path / 'runs.db'}", backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on "), line
        return proc, line.split()[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def _limit_file_size(pid: int, limit: str) -> None:
    subprocess.run(["prlimit", "--pid", str(pid), f"--fsize={limit}"], check=True)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
def test_a_store_that_cannot_write_is_503_then_everything_goes_on(
    child: Callable[[], tuple[subprocess.Popen[str], str]], backend: str
) -> None:
    proc, url = child()
    with httpx.Client(base_url=url, timeout=30, headers=JSON) as http:
        started = http.post("/workflows/ask/run-nowait", json={"handler_id": "before"})
        assert started.status_code == 200, started.text
        assert events_until(http, "before", "Question") == ["Question"]

        # No file of the process may grow by a byte: every commit fails, as on a full disk.
        _limit_file_size(proc.pid, "1:unlimited")

        refused = http.post("/workflows/ask/run-nowait", json={"handler_id": "during"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert "nothing was recorded" in refused.json()["detail"]
        answered = http.post("/events/before", json=ANSWER)
        assert answered.status_code == 503, answered.text
        assert answered.headers["retry-after"] == "1"

        health = http.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert "the store fails" in health.json()["reason"]
        assert health.headers["retry-after"] == "1"

        # Reads go on: the run is there, unfinished, and nothing was started.
        listed = http.get("/handlers").json()["handlers"]
        assert [(h["handler_id"], h["status"]) for h in listed] == [("before", "running")]
        assert http.get("/handlers/during").status_code == 404

        _limit_file_size(proc.pid, "unlimited:unlimited")
        until(lambda: http.get("/health").status_code == 200, "the store to work again")

        # The refused answer was not taken: the run still waits for it.
        assert http.post("/events/before", json=ANSWER).status_code == 200
        assert events_until(http, "before", "StopEvent") == ["Question", "StopEvent"]
        done = http.get("/handlers/before").json()
        assert (done["status"], done["result"]["value"]) == (
            "completed",
            {"result": "nice to meet you, Ada"},
        )
        again = http.post("/workflows/ask/run-nowait", json={"handler_id": "during"})
        assert again.status_code == 200, again.text
    assert proc.poll() is None  # it never stopped serving


def _frames(lines: Iterator[str]) -> Iterator[tuple[int | None, str | None]]:
    """SSE frames as (id, data): an event recorded (both), one sent before it
    was recorded (no id), or the word that events up to an id are recorded (no data)."""
    seq: int | None = None
    data: str | None = None
    for line in lines:
        if line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and (seq is not None or data is not None):
            yield seq, data
            seq = data = None


def _lines_of(pipe: IO[str], into: queue.Queue[str]) -> None:
    for line in pipe:
        into.put(line.rstrip("\n"))


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
def test_a_stream_goes_on_across_a_store_failure_that_stops_its_run(
    tmp_path: Path, backend: str
) -> None:
    """A client follows a run whose step's batch cannot be recorded: the store
    fails between the step's first event and its end.  The stream stays open
    (no error, no end) while the store fails; once it works, the server runs
    the step again and the stream goes on to the run's end: every recorded
    event once, in order, with its id.  The events the first attempt sent
    before they were recorded (without an id) come again, recorded."""
    proc = subprocess.Popen(
        _command(f"sqlite:///{tmp_path / 'runs.db'}", backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # a pipe, not a file: the file-size limit does not cut it
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    logs: queue.Queue[str] = queue.Queue()
    threads = [threading.Thread(target=_lines_of, args=(proc.stderr, logs), daemon=True)]
    threads[0].start()
    frames: queue.Queue[tuple[int | None, str | None] | BaseException | None] = queue.Queue()
    gate = tmp_path / "go"
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving on "), line
        url = line.split()[-1]

        def follow() -> None:
            try:
                with (
                    httpx.Client(base_url=url, timeout=60) as client,
                    client.stream("GET", "/events/g", params={"after_sequence": "-1"}) as r,
                ):
                    assert r.status_code == 200
                    for frame in _frames(r.iter_lines()):
                        frames.put(frame)
                frames.put(None)  # the stream ended
            except BaseException as exc:  # the test thread reports it
                frames.put(exc)

        def next_data() -> tuple[int | None, dict[str, Any]]:
            while True:
                got = frames.get(timeout=60)
                assert got is not None, "the stream ended"
                assert not isinstance(got, BaseException), got
                seq, data = got
                if data is not None:
                    return seq, _short(json.loads(data))

        with httpx.Client(base_url=url, timeout=30, headers=JSON) as http:
            started = http.post(
                "/workflows/gated/run-nowait",
                json={"handler_id": "g", "start_event": {"gate": str(gate)}},
            )
            assert started.status_code == 200, started.text
            threads.append(threading.Thread(target=follow, daemon=True))
            threads[-1].start()
            first = next_data()
            assert first == (None, _tick(0))  # sent before it was recorded

            _limit_file_size(proc.pid, "1:unlimited")
            gate.touch()
            live = [first] + [next_data() for _ in range(3)]
            assert live == [(None, _tick(n)) for n in range(4)]
            # The step has returned; its batch cannot be recorded.
            until(lambda: http.get("/health").status_code == 503, "the store to fail")
            assert http.get("/handlers/g").json()["status"] == "running"
            assert frames.empty()  # the stream neither failed nor ended

            _limit_file_size(proc.pid, "unlimited:unlimited")
            while "the store works again" not in (message := logs.get(timeout=60)):
                pass
            assert message.endswith("resuming 1 run(s)"), message

            rest: list[tuple[int | None, str | None]] = []
            while (got := frames.get(timeout=60)) is not None:
                assert not isinstance(got, BaseException), got
                rest.append(got)
            recorded = [(seq, _short(json.loads(d))) for seq, d in rest if d is not None]
            stop = {"type": "StopEvent", "value": {"result": "done"}}
            assert recorded == [*((n, _tick(n)) for n in range(4)), (4, stop)]
            with http.stream("GET", "/events/g", params={"after_sequence": "-1"}) as replay:
                again = [(seq, data) for seq, data in _frames(replay.iter_lines())]
            assert [(seq, _short(json.loads(d))) for seq, d in again if d is not None] == recorded
            done = http.get("/handlers/g").json()
            assert (done["status"], done["result"]["value"]) == ("completed", {"result": "done"})
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def _tick(n: int) -> dict[str, Any]:
    return {"type": "Tick", "value": {"n": n}}


def _short(envelope: dict[str, Any]) -> dict[str, Any]:
    """An envelope's type and value (its names depend on how the child imports the flows)."""
    return {"type": envelope["type"], "value": envelope["value"]}


def _startup_failure(store: str, backend: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(store, backend),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )


def test_an_unreachable_database_is_one_line_and_exit_1(backend: str) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    done = _startup_failure("postgresql://postgres@127.0.0.1:1/test", backend)
    assert done.returncode == 1
    assert "serving on" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: the PostgreSQL store cannot be reached: ")


def test_a_read_only_store_file_is_one_line_and_exit_1(tmp_path: Path, backend: str) -> None:
    db = tmp_path / "runs.db"
    db.write_bytes(b"")
    # chmod does not stop root, who runs these tests in containers; the
    # immutable attribute does.
    made = subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False)
    if made.returncode != 0:
        db.chmod(0o444)
        if os.geteuid() == 0:
            pytest.skip(f"cannot make {db} read-only for root: chattr failed ({made.stderr!r})")
    try:
        done = _startup_failure(f"sqlite:///{db}", backend)
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True, check=False)
    assert done.returncode == 1
    assert "serving on" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot write to the SQLite store '{db}': ")
    assert "readonly" in lines[0]
