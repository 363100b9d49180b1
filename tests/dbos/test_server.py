"""Two server processes on one DBOS database: a run started through one is
answered and streamed through the other, as two replicas behind a load
balancer would see it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[2]
TARGET = f"{ROOT / 'tests' / 'dbos' / 'servers.py'}:ask_server"


class Server:
    """``python -m anyflow.server ... --dbos URL`` in a child process."""

    def __init__(self, database_url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anyflow.server", TARGET, "--port", "0", "--dbos", database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("serving on "), line
        self.http = httpx.Client(base_url=line.split()[-1], timeout=30)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def two_servers(database_url: str) -> Iterator[tuple[Server, Server]]:
    first = Server(database_url)
    try:
        second = Server(database_url)
    except BaseException:
        first.close()
        raise
    yield first, second
    second.close()
    first.close()


def events_until(http: httpx.Client, handler_id: str, kind: str) -> list[dict[str, object]]:
    seen = []
    with http.stream("GET", f"/events/{handler_id}", params={"after_sequence": "-1"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if seen[-1]["type"] == kind:
                    break
    return seen


def test_a_run_started_on_one_server_is_answered_and_streamed_on_the_other(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    started = first.http.post("/workflows/visit/run-nowait", json={"handler_id": "visit-1"})
    assert started.status_code == 200, started.text

    assert [e["type"] for e in events_until(second.http, "visit-1", "Question")] == ["Question"]
    assert second.http.get("/handlers/visit-1").json()["status"] == "running"
    answer = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}
    sent = second.http.post("/events/visit-1", json={"event": answer})
    assert sent.status_code == 200, sent.text

    events = events_until(second.http, "visit-1", "StopEvent")
    assert [e["type"] for e in events] == ["Question", "StopEvent"]
    assert events[-1]["value"] == {"result": "welcome, Ada"}
    for server in (first, second):
        done = server.http.get("/handlers/visit-1")
        assert (done.status_code, done.json()["status"]) == (200, "completed")
        assert done.json()["result"]["value"] == {"result": "welcome, Ada"}
    listed = second.http.get("/handlers").json()["handlers"]
    assert [(h["handler_id"], h["workflow_name"]) for h in listed] == [("visit-1", "visit")]
