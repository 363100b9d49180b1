"""The README's example keeps working, on both backends."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parent.parent / "examples"


async def test_quickstart_totals_the_order_and_retries_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLES / "quickstart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["quickstart"] = module
    spec.loader.exec_module(module)
    await module.main()
    out = capsys.readouterr().out
    assert "stock service timed out for teapot; retrying" in out
    assert out.endswith("order total: 60.50\n")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("name", ["retries_and_errors", "streaming"])
def test_examples_whose_failures_are_handled_write_nothing_to_stderr(
    name: str, backend: str
) -> None:
    """A failure that is retried, caught or received by the caller is not an
    error to log: the examples print what their pages show, and nothing more."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--backend", backend],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
