"""``anyflow serve``: the workflow server, as ``python -m anyflow.server`` runs it."""

from __future__ import annotations

import subprocess
import sys

import httpx

from .conftest import FLOWS_FILE, ROOT


def test_serve_runs_the_workflow_over_http() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyflow", "serve", f"{FLOWS_FILE}:Hello", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on "), line
        with httpx.Client(base_url=line.split()[-1], timeout=30) as http:
            done = http.post("/workflows/Hello/run", json={"start_event": {"name": "Ada"}})
            assert done.status_code == 200, done.text
            assert done.json()["result"]["value"] == {"result": {"greeting": "hello Ada"}}
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
