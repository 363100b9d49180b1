"""The base install, as a new user gets it: ``pip install anyflow`` (this
checkout) into a fresh virtual environment, without any extra.

tests/test_extras.py simulates a missing package inside the development
environment; this test checks the real thing: the command and the optional
parts name the extra to install, and the quickstart runs. It needs the package
index (or pip's cache) for anyio, attrs, cattrs and the build backend, and
takes a few tens of seconds: it is marked ``slow`` (deselect it with
``-m 'not slow'``) and runs by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow

# What pip prints when it cannot reach the package index: a reason to skip,
# where any other failure of the install is a failure of the test.
OFFLINE = (
    "Could not find a version that satisfies",
    "No matching distribution found",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Max retries exceeded",
    "ProxyError",
)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with anyflow installed from this checkout."""
    where = tmp_path_factory.mktemp("fresh") / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(where)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"could not create a virtual environment: {made.stderr.strip()}")
    pip = subprocess.run(
        [str(bin_of(where, "python")), "-m", "pip", "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=clean_env(),
    )
    if pip.returncode != 0:
        if any(sign in pip.stderr for sign in OFFLINE):
            pytest.skip(f"the package index is out of reach: {pip.stderr.strip()[-500:]}")
        pytest.fail(f"pip install {ROOT} failed:\n{pip.stdout}\n{pip.stderr}")
    return where


def bin_of(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def clean_env() -> dict[str, str]:
    """The environment without what would reach this checkout or the
    development venv instead of the fresh one."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    program = args[0] if args[0] == "anyflow" else "python"
    rest = args[1:] if program == "anyflow" else args
    return subprocess.run(
        [str(bin_of(venv, program)), *rest],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,  # not the checkout: anyflow comes from the venv
        env=clean_env(),
    )


def test_the_base_install_has_no_extra(venv: Path, tmp_path: Path) -> None:
    done = run(venv, "-c", "import anyflow; print(anyflow.__file__)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(venv)
    for module in ("cyclopts", "rich", "starlette", "httpx", "trio", "hypothesis"):
        found = run(
            venv, "-c", f"import importlib.util as u; print(u.find_spec({module!r}))", cwd=tmp_path
        )
        assert found.stdout.strip() == "None", f"{module} is installed with the base install"


@pytest.mark.parametrize("args", [["--help"], ["run", "flow.py:Flow"]])
def test_the_command_names_the_cli_extra_in_one_line(
    venv: Path, tmp_path: Path, args: list[str]
) -> None:
    done = run(venv, "anyflow", *args, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "pip install 'anyflow[cli]'" in done.stderr


def test_the_server_names_its_extra(venv: Path, tmp_path: Path) -> None:
    done = run(venv, "-c", "import anyflow.server", cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith("pip install 'anyflow[server]'")


def test_the_quickstart_on_trio_names_the_trio_extra(venv: Path, tmp_path: Path) -> None:
    done = run(venv, str(ROOT / "examples" / "quickstart.py"), "--backend", "trio", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "error: --backend trio needs trio: pip install 'anyflow[trio]'\n"


def test_the_quickstart_runs(venv: Path, tmp_path: Path) -> None:
    done = run(venv, str(ROOT / "examples" / "quickstart.py"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.endswith("order total: 60.50\n")
