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


def test_serve_passes_the_security_options_on() -> None:
    command = [sys.executable, "-m", "anyflow", "serve", f"{FLOWS_FILE}:Hello"]
    refused = subprocess.run(
        [*command, "--host", "0.0.0.0"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert refused.returncode == 2
    assert "serving on" not in refused.stdout
    assert refused.stderr.startswith("error: refusing to listen on 0.0.0.0 without a token")
    options = ["--token", "t", "--allowed-host", "runs.example.com", "--cors-origin", "http://ui"]
    proc = subprocess.Popen(
        [*command, "--port", "0", *options],
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
            assert http.get("/handlers").status_code == 401
            headers = {
                "Authorization": "Bearer t",
                "Host": "runs.example.com",
                "Origin": "http://ui",
            }
            body = {"start_event": {"name": "Ada"}}
            done = http.post("/workflows/Hello/run", json=body, headers=headers)
            assert done.status_code == 200, done.text
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
