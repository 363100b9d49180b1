"""anyflow.testing.pytest_plugin: the documented hypothesis test of a
simulated run, written as docs/testing.md shows it (no marker, no anyio
configuration), runs on asyncio and on trio, keeps a database key of its own,
and prints its replay report once, without engine logs or explain-phase noise.

Each test runs pytest in a fresh directory, as a user's project would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FAN_OUT_TESTS = """
from hypothesis import given, settings
from anyflow.testing import simulate
from anyflow.testing.strategies import schedules
from fuzz_fanout import Basket, RacyBasket

@settings(deadline=None)
@given(schedule=schedules())
async def test_racy_total(schedule):
    simulation = await simulate(RacyBasket(), schedule=schedule, prices=[1, 10, 100])
    assert simulation.result == 111

@settings(deadline=None)
@given(schedule=schedules())
async def test_total(schedule):
    seen = open("seen.txt", "a")
    seen.write(repr(schedule.choices) + "\\n")
    seen.close()
    simulation = await simulate(Basket(), schedule=schedule, prices=[1, 10, 100])
    assert simulation.result == 111
"""


_CI_VARIABLES = {
    "CI",
    "TF_BUILD",
    "BUILDKITE",
    "CIRCLECI",
    "CIRRUS_CI",
    "CODEBUILD_BUILD_ID",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "HEROKU_TEST_RUN_ID",
    "TEAMCITY_VERSION",
}


def run_pytest(project: Path, tests: str, *args: str) -> str:
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "fuzz_fanout.py").write_text((EXAMPLES / "fuzz_fanout.py").read_text())
    (project / "test_it.py").write_text(textwrap.dedent(tests))
    # Hypothesis picks its "ci" settings profile (no example database, derandomized)
    # when it sees a CI variable; these tests are about the default profile.
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARIABLES}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"),
            *("-p", "anyflow.testing.pytest_plugin", "-rA", *args),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout + done.stderr


def outcomes(output: str) -> set[str]:
    return set(re.findall(r"^(PASSED|FAILED|ERROR) (\S+)", output, re.MULTILINE))  # type: ignore[arg-type]


def test_the_documented_test_runs_as_written_on_both_backends(tmp_path: Path) -> None:
    output = run_pytest(tmp_path, FAN_OUT_TESTS)
    assert {
        ("FAILED", "test_it.py::test_racy_total[asyncio]"),
        ("FAILED", "test_it.py::test_racy_total[trio]"),
        ("PASSED", "test_it.py::test_total[asyncio]"),
        ("PASSED", "test_it.py::test_total[trio]"),
    } <= {(status, node.split(" ")[0]) for status, node in outcomes(output)}, output
    # The falsifying example under the test's own name, its report once per
    # failing test, and no explain-phase lines.
    assert output.count("Failing test case: test_racy_total(") == 2, output
    assert output.count("anyflow simulation: replay with") == 2, output
    assert "Explanation:" not in output
    assert "run_with_hypothesis" not in output


def test_each_test_keeps_its_own_examples(tmp_path: Path) -> None:
    """A failure of one test is not replayed as the first example of another
    test with the same strategies (they shared one database key)."""
    run_pytest(tmp_path, FAN_OUT_TESTS, "-k", "racy")  # saves its failure
    assert list((tmp_path / ".hypothesis" / "examples").iterdir())
    output = run_pytest(tmp_path, FAN_OUT_TESTS, "-k", "not racy")
    assert "2 passed" in output, output
    first = (tmp_path / "seen.txt").read_text().splitlines()[0]
    assert first == "()", first  # hypothesis's own first example, not the failure


def test_the_anyio_backend_fixture_raises_no_health_check(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.fixture(params=["asyncio", "trio"])
            def anyio_backend(request):
                return request.param
            """
        )
    )
    output = run_pytest(
        tmp_path,
        """
        from hypothesis import given, settings
        from anyflow.testing import simulate
        from anyflow.testing.strategies import schedules
        from fuzz_fanout import Basket

        @settings(deadline=None, max_examples=10)
        @given(schedule=schedules())
        async def test_total(anyio_backend, schedule):
            simulation = await simulate(Basket(), schedule=schedule, prices=[1, 10])
            assert simulation.result == 11
        """,
    )
    assert "2 passed" in output, output
    assert "HealthCheck" not in output


def test_a_failing_run_logs_nothing_and_reports_once(tmp_path: Path) -> None:
    output = run_pytest(
        tmp_path,
        """
        from hypothesis import given, settings
        from anyflow import StartEvent, StopEvent, Workflow, step
        from anyflow.testing import simulate
        from anyflow.testing.strategies import faults, schedules

        class Pay(Workflow):
            @step
            async def pay(self, ev: StartEvent) -> StopEvent:
                return StopEvent(result="paid")

        @settings(deadline=None, report_multiple_bugs=False)
        @given(schedule=schedules(), faults=faults(max=1, kinds=["error"]))
        async def test_pays(schedule, faults):
            simulation = await simulate(Pay(), schedule=schedule, faults=faults)
            assert simulation.result == "paid"
        """,
        "--log-level=DEBUG",
    )
    assert "2 failed" in output, output
    assert output.count("anyflow simulation: replay with") == 2, output
    assert not re.search(r"^(DEBUG|INFO|WARNING|ERROR) +anyflow", output, re.MULTILINE), output
