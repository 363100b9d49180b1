"""``anyflow runs list|show`` and ``anyflow replay`` on a SQLite store that a
durable run wrote."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .conftest import FLOWS_MODULE, anyflow

if TYPE_CHECKING:
    from collections.abc import Callable


def test_runs_list_shows_the_recorded_run(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, out, _ = cli("runs", "list", "--store", store_url)
    assert status == 0
    assert "greet-1" in out
    assert "completed" in out


def test_runs_show_gives_the_record_and_the_published_events(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, out, _ = cli("runs", "show", "greet-1", "--store", store_url)
    assert status == 0
    assert "workflow: tests.cli.flows:Hello" in out
    assert "status:   completed" in out
    assert "ticks:    3" in out
    assert re.search(r"^ +0 Greeting text=composing$", out, re.MULTILINE)
    assert re.search(r'^ +1 StopEvent result=\{"greeting": "hello Ada"\}$', out, re.MULTILINE)


def test_runs_show_of_an_unknown_run_says_which_there_are(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, _, err = cli("runs", "show", "greet-9", "--store", store_url)
    assert status == 2
    assert err == (
        "error: the store has no run 'greet-9': see `anyflow runs list` (latest: greet-1)\n"
    )


def test_replay_without_the_workflow_lists_the_ticks(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, out, _ = cli("replay", "greet-1", "--store", store_url)
    assert status == 0
    assert "pass --workflow tests.cli.flows:Hello to see the state after each" in out
    ticks = re.findall(r"^tick (\d) (\w+) at \+[\d.]+s (.*)$", out, re.MULTILINE)
    assert ticks == [
        ("0", "RunStarted", "start_event=Greet"),
        ("1", "StepCompleted", "worker_id=0 output=Greeting"),
        ("2", "StepCompleted", "worker_id=1 output=StopEvent"),
    ]


def test_replay_with_the_workflow_shows_the_state_tick_by_tick(store_url: str) -> None:
    done = anyflow(
        "replay", "greet-1", "--store", store_url, "--workflow", f"{FLOWS_MODULE}:Hello",
        "--to-tick", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "after tick 0 RunStarted at +0.000s:\n" in out
    assert "executing: compose#0 on Greet (event 0, attempt 1)" in out
    assert re.search(r"^after tick 1 StepCompleted at \+\d+\.\d{3}s:$", out, re.MULTILINE)
    assert "executing: finish#1 on Greeting (event 1, attempt 1)" in out
    assert "after tick 2" not in out


def test_serve_reports_a_bad_target_as_the_server_does(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    status, _, err = cli("serve", "tests/cli/nowhere.py:app")
    assert status == 2
    assert err.startswith("error: no file 'tests/cli/nowhere.py'")


def test_replay_to_a_negative_tick_is_refused(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, _, err = cli("replay", "greet-1", "--store", store_url, "--to-tick", "-1")
    assert status == 2
    assert err == "error: --to-tick counts ticks from 0, so -1 is none: pass 0 or more\n"


def test_replay_counts_every_time_from_the_runs_first_tick(
    cli: Callable[..., tuple[int, str, str]], failed_store_url: str
) -> None:
    status, out, _ = cli(
        "replay", "review-1", "--store", failed_store_url, "--workflow", "tests.cli.runflows:Review"
    )
    assert status == 0
    heads = re.findall(r"^after tick (\d) (\w+) at \+(\d+\.\d{3})s:$", out, re.MULTILINE)
    assert [(index, kind) for index, kind, _ in heads] == [
        ("0", "RunStarted"),
        ("1", "StepCompleted"),
        ("2", "StepFailed"),
        ("3", "TimerFired"),
        ("4", "StepFailed"),
    ]
    times = [float(since) for _, _, since in heads]
    assert times[0] == 0.0
    assert times == sorted(times)
    # The retry's due time too: no epoch seconds anywhere.
    assert re.search(r"^  retry due at \+\d+\.\d{3}s: review on Draft \(attempt 2\)$", out, re.M)
    assert "t=" not in out
