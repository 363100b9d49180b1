"""Helpers for the command-line tests: the command in a child process (as a
user runs it) and in this one (faster, for the many bad-input cases)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from anyflow.cli import main
from anyflow.durable import DurableRuntime, SqliteStore

from .flows import Hello
from .runflows import Review

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]
FLOWS_FILE = "tests/cli/flows.py"
FLOWS_MODULE = "tests.cli.flows"


def anyflow(
    *args: str, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m anyflow ARGS`` in a child process, from the repository's
    root, reading ``stdin`` (or nothing: stdin is closed)."""
    return subprocess.run(
        [sys.executable, "-m", "anyflow", *args],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """The command in this process: ``(status, stdout, stderr)``."""
    monkeypatch.chdir(ROOT)

    def call(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return call


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store holding one finished run of ``Hello``, ``greet-1``."""
    path = tmp_path / "runs.db"

    async def record() -> None:
        async with SqliteStore(str(path)) as store, DurableRuntime(store) as runtime:
            assert await Hello().run(run_id="greet-1", runtime=runtime, name="Ada") == {
                "greeting": "hello Ada"
            }

    anyio.run(record)
    return f"sqlite:///{path}"


@pytest.fixture
def failed_store_url(tmp_path: Path) -> str:
    """A SQLite store holding a failed run of ``Review``, ``review-1``, and a
    finished run of ``Hello``, ``greet-1``."""
    path = tmp_path / "failed.db"

    async def record() -> None:
        async with SqliteStore(str(path)) as store, DurableRuntime(store) as runtime:
            with pytest.raises(ValueError, match="is <too> short"):
                await Review().run(run_id="review-1", runtime=runtime)
            await Hello().run(run_id="greet-1", runtime=runtime, name="Ada")

    logger = logging.getLogger("anyflow")
    logger.disabled = True  # the failure is on purpose: no traceback in the test log
    try:
        anyio.run(record)
    finally:
        logger.disabled = False
    return f"sqlite:///{path}"
