"""A program written for llama-index-workflows runs on anyflow with only its imports
changed (examples/ported/), on both backends, with the output it has there."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

PORTED = Path(__file__).parent.parent / "examples" / "ported"

EXPECTED = """\
Where to, Ann? Lisbon
planning a trip to Lisbon
Trip for Ann
food: grilled sardines
sights: the castle and the old town
weather: mild, 18 C
weather looked up 2 times
"""


def test_only_the_imports_name_anyflow() -> None:
    source = (PORTED / "trip_planner.py").read_text()
    for line in source.splitlines():
        if re.search(r"\banyflow\b", line):
            assert re.match(r"(from anyflow[.\w]* import|import anyflow)", line), line


async def test_the_trip_planner_prints_what_it_prints_on_the_incumbent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("trip_planner", PORTED / "trip_planner.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["trip_planner"] = module
    spec.loader.exec_module(module)
    await module.main()
    assert capsys.readouterr().out == EXPECTED
