"""The server as a process: killed while a run waits, stopped while streams are attached.

`python -m anyflow.server` runs in a child process on asyncio or trio with a
SQLite store; the test talks to it over HTTP as any client would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[2]
FLOWS = ROOT / "tests" / "server" / "flows.py"

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])


class Server:
    def __init__(self, db: Path, backend: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anyflow.server",
                f"{FLOWS}:ask_server",
                "--port",
                "0",
                "--backend",
                backend,
                "--store",
                f"sqlite:///{db}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("serving on "), line
        self.url = line.split()[-1]
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def servers(tmp_path: Path, backend: str) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


def start(servers: list[Server], db: Path, backend: str) -> Server:
    server = Server(db, backend)
    servers.append(server)
    return server


def events_until(http: httpx.Client, handler_id: str, kind: str) -> list[dict[str, object]]:
    """The run's events from the start, read until one of type ``kind``."""
    seen = []
    with http.stream("GET", f"/events/{handler_id}", params={"after_sequence": "-1"}) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if seen[-1]["type"] == kind:
                    break
    return seen


def test_sigkill_while_waiting_for_input_then_restart_finishes_the_run(
    tmp_path: Path, backend: str, servers: list[Server]
) -> None:
    db = tmp_path / "runs.db"
    first = start(servers, db, backend)
    started = first.http.post("/workflows/ask/run-nowait", json={"handler_id": "visit-1"})
    assert started.status_code == 200, started.text
    assert [e["type"] for e in events_until(first.http, "visit-1", "Question")] == ["Question"]

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)

    second = start(servers, db, backend)
    waiting = second.http.get("/handlers/visit-1")
    assert waiting.status_code == 202
    assert waiting.json()["status"] == "running"
    answer = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
    sent = second.http.post("/events/visit-1", json={"event": answer})
    assert sent.status_code == 200, sent.text
    events = events_until(second.http, "visit-1", "StopEvent")
    assert [e["type"] for e in events] == ["Question", "StopEvent"]
    assert events[-1]["value"] == {"result": "nice to meet you, Ada"}
    done = second.http.get("/handlers/visit-1")
    assert (done.status_code, done.json()["status"]) == (200, "completed")


def test_sigterm_with_a_stream_attached_exits_and_the_run_resumes(
    tmp_path: Path, backend: str, servers: list[Server]
) -> None:
    db = tmp_path / "runs.db"
    first = start(servers, db, backend)
    first.http.post("/workflows/ask/run-nowait", json={"handler_id": "visit-2"})
    with first.http.stream("GET", "/events/visit-2", params={"after_sequence": "-1"}) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data:"):
                break  # the question: the run now waits, and the stream stays open
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=20) == 0
        assert [line for line in lines if line] == []  # the server ended the stream

    second = start(servers, db, backend)
    answer = {"type": "Answer", "value": {"key": "name", "response": "Bo"}}
    assert second.http.post("/events/visit-2", json={"event": answer}).status_code == 200
    events = events_until(second.http, "visit-2", "StopEvent")
    assert events[-1]["value"] == {"result": "nice to meet you, Bo"}
