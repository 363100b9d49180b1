"""``anyflow run``: a workflow from a file or a module, on both backends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from .conftest import FLOWS_FILE, FLOWS_MODULE, anyflow

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    "target",
    [f"{FLOWS_FILE}:Hello", f"{FLOWS_MODULE}:hello"],
    ids=["file-class", "module-instance"],
)
def test_run_prints_one_json_object_per_line_ending_with_the_result(
    target: str, backend: str
) -> None:
    done = anyflow("run", target, "--input", '{"name": "Ada"}', "--backend", backend, "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1] == {"result": {"greeting": "hello Ada"}}
    steps = [
        (line["fields"]["name"], line["fields"]["step_state"])
        for line in lines
        if line.get("event") == "anyflow.events:StepStateChanged"
    ]
    assert steps == [
        ("compose", "running"),
        ("compose", "not_running"),
        ("finish", "running"),
        ("finish", "not_running"),
    ]
    published = [line["fields"] for line in lines if line.get("event", "").endswith(":Greeting")]
    assert published == [{"text": "composing"}]


def test_the_live_view_shows_steps_events_and_the_result(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    status, out, _ = cli("run", f"{FLOWS_MODULE}:Hello", "--input", '{"name": "Ada"}')
    assert status == 0
    assert "▶ compose#0 on Greet" in out
    assert "✓ compose#0 → Greeting" in out
    assert "event Greeting(text='composing')" in out
    assert "✓ finish#1 → StopEvent" in out
    assert '"greeting": "hello Ada"' in out


def test_a_failing_run_exits_1_with_the_steps_error_in_one_line() -> None:
    done = anyflow("run", f"{FLOWS_FILE}:Broken")
    assert done.returncode == 1
    assert done.stderr == (
        "error: the run failed: step 'explode' failed after 1 attempt(s): "
        "ValueError: the answer is not 42\n"
    )


def test_a_failing_run_in_json_ends_with_an_error_line(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    status, out, err = cli("run", f"{FLOWS_MODULE}:Broken", "--json", "--backend", "trio")
    assert status == 1
    last = json.loads(out.splitlines()[-1])
    assert last == {
        "error": "step 'explode' failed after 1 attempt(s): ValueError: the answer is not 42"
    }
    assert "Traceback" not in err
