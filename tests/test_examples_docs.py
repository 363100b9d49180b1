"""The examples of the documentation pages (docs/*.md, examples/*.py) print what
the pages say they print, on asyncio and on trio."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parent.parent / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once per session.

    Once, because a saved context names its event classes by module and
    qualified name: importing the file again would make a second, different
    class under the same name.
    """
    module_name = f"anyflow_docs_example_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


async def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    await load(name).main()
    return capsys.readouterr().out.splitlines()


async def test_human_in_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_example("human_in_the_loop", capsys) == [
        "? Where to, Ann?",
        "> Lisbon",
        "? Lisbon costs 240 EUR. Book it?",
        "> yes",
        "booked Lisbon for Ann",
    ]


async def test_retries_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_example("retries_and_errors", capsys) == [
        "  .. fetch_rate: attempt 2 after ConnectionError: rate service unreachable",
        "  .. fetch_rate: attempt 3 after ConnectionError: rate service unreachable",
        "  .. convert: attempt 2 after StepTimeoutError: step 'convert' took longer than its "
        "timeout of 0.05s (attempt 1)",
        "kept a draft of 110.00 EUR: send failed after 1 attempt(s) with PermissionError: "
        "mail server refused the invoice",
        "last event: WorkflowFailedEvent(result=None, step_name='ping', "
        "exception_type='ConnectionError', exception_message='db1 does not answer', attempts=2)",
        "run failed: ConnectionError: db1 does not answer [raised by step 'ping' (attempt 2)]",
    ]


async def test_serialization(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_example("serialization", capsys) == [
        "? Which room?",
        "> blue room",
        "? Book the blue room for Ann?",
        "(saved version, workflow, store, run; the step waits as 'wait#2'; run stopped)",
        "? Book the blue room for Ann?",  # asked again: the resumed run has a new stream
        "> yes",
        "booked the blue room for Ann",
        "drafts: 2, room: blue room",  # the code before the first unanswered wait ran twice
    ]


async def test_streaming(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_example("streaming", capsys) == [
        "first loop:  Progress(done=1, total=4)",
        "first loop:  Progress(done=2, total=4)",
        "second loop: Progress(done=3, total=4)",
        "second loop: Progress(done=4, total=4)",
        "second loop: StopEvent(result='a report in 4 parts')",
        "result: a report in 4 parts",
        "step crunch running: StartEvent -> None",
        "Progress(done=1, total=2)",
        "Progress(done=2, total=2)",
        "step crunch not_running: StartEvent -> StopEvent",
        "StopEvent(result='a report in 2 parts')",
        "last event: WorkflowFailedEvent(result=None, step_name='crunch', "
        "exception_type='ValueError', exception_message='nothing to report', attempts=1)",
        "exception: ValueError('nothing to report')",
    ]


def test_a_saved_example_run_resumes_in_another_process(tmp_path: Path) -> None:
    """What docs/serialization.md says about event names: a process that
    imports the module defining the events can resume the saved run."""
    saved = anyio.run(load("serialization").first_session)
    assert '"anyflow_docs_example_serialization:Answer"' in saved
    path = tmp_path / "saved.json"
    path.write_text(saved)
    script = f"""
import importlib.util, json, sys, anyio
spec = importlib.util.spec_from_file_location(
    "anyflow_docs_example_serialization", {str(EXAMPLES / "serialization.py")!r}
)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
anyio.run(module.second_session, open({str(path)!r}).read(), backend="trio")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2:] == [
        "booked the blue room for Ann",
        "drafts: 2, room: blue room",
    ]


async def test_durable(anyio_backend_name: str) -> None:
    # Run as a script, as its page says: both of its processes then name the
    # workflow __main__:OrderFlow (the journal records classes by module).
    done = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "durable.py"), "--backend", anyio_backend_name]
    )
    assert done.stdout.decode().splitlines() == [
        "first process:",
        "  charge 30 EUR",
        "  pack the parcel",
        "first process killed by signal 9",
        "this process resumes order-42:",
        "  pack the parcel: already done under this key, not again",
        "  hand it to the courier",
        "order 42 shipped",
        "order-42: completed",
    ]


async def test_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_example("server", capsys) == [
        "#0 PriorityQuestion",
        "#1 StopEvent",
        "completed: 'printer on fire' filed as urgent",
    ]


def test_the_memo_shown_in_serialization_md_is_the_one_saved() -> None:
    """docs/serialization.md shows the example's saved memo as a script saves it
    (its events named ``__main__:...``): the page's block is that data."""
    page = (Path(__file__).parent.parent / "docs" / "serialization.md").read_text()
    start = page.index("```json\n", page.index("saved memo looks")) + len("```json\n")
    shown = json.loads("{" + page[start : page.index("\n```", start)] + "}")
    saved = anyio.run(load("serialization").first_session)
    saved = saved.replace('"anyflow_docs_example_serialization:', '"__main__:')
    assert shown["memos"] == json.loads(saved)["run"]["memos"]
