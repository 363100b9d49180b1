"""A store that fails does not take the server down, and nothing accepted is lost.

A child server on SQLite has its file-size limit cut to nothing with
``prlimit`` (every write then fails, as on a full disk) and lifted again:
meanwhile what it cannot record is refused with a 503 and ``Retry-After``,
``/health`` says why, reads go on, and once writes succeed the server resumes
the runs the failure stopped by itself.  A store that cannot be opened at all
stops ``python -m anyflow.server`` with one line, before it says it serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
