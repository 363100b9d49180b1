"""examples/dbos_orders.py works as its docstring says: in one process, and
as three processes (start and leave, approve from another, resume and wait)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "dbos_orders.py"


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return done.stdout


def test_in_one_process(tmp_path: Path) -> None:
    out = run(tmp_path).splitlines()
    assert out[0].endswith("asks: approve paying for 2 x lamp?")
    assert out[1:] == ["lamp: paid and shipped"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_in_three_processes(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> None:
    import os

    env = dict(os.environ)
    if database == "postgres":
        from .conftest import drop_postgres_database, new_postgres_database

        postgres_url: str = request.getfixturevalue("postgres_url")
        name, env["DBOS_DATABASE_URL"] = new_postgres_database(postgres_url)
        request.addfinalizer(lambda: drop_postgres_database(postgres_url, name))
    assert run(tmp_path, "start", "order-7", env=env) == (
        "order-7 asks: approve paying for 2 x lamp?\n"
    )
    assert run(tmp_path, "approve", "order-7", env=env) == ""
    assert run(tmp_path, "wait", "order-7", env=env) == "lamp: paid and shipped\n"
