"""The README's example keeps working, on both backends."""

from __future__ import annotations

import importlib.util
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
