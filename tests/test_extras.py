"""Each optional part of anyflow, when its extra is not installed, says which
extra to install (``pip install 'anyflow[...]'``) instead of naming a module;
the ``anyflow`` command says it in one line, without a traceback.

A missing package is simulated in a subprocess by ``sys.modules[name] = None``,
which makes importing it fail as if it were not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def without(missing: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor name in {missing.split(',')!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("missing", "statement", "extra"),
    [
        ("starlette", "import anyflow.server", "server"),
        ("sniffio", "import anyflow.server", "server"),
        ("h11", "import anyflow.server._serve", "server"),
        ("httpx", "import anyflow.client", "client"),
        ("dbos", "import anyflow.dbos", "dbos"),
        ("sqlalchemy", "import anyflow.dbos", "dbos"),
        ("sniffio", "import anyflow.dbos", "dbos"),
        ("opentelemetry", "import anyflow.tracing", "otel"),
        ("hypothesis", "import anyflow.testing.strategies", "testing"),
        (
            "psycopg,psycopg_pool",
            "from anyflow.durable import PostgresStore; PostgresStore('postgresql://x/y')",
            "postgres",
        ),
    ],
)
def test_an_optional_part_names_its_extra(missing: str, statement: str, extra: str) -> None:
    done = without(missing, statement)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(f"pip install 'anyflow[{extra}]'"), done.stderr
    assert missing.split(",")[0] in last or extra in ("otel", "postgres")


def test_the_base_parts_import_without_any_extra() -> None:
    everything = "cyclopts,rich,starlette,h11,sniffio,httpx,dbos,sqlalchemy,hypothesis,trio"
    done = without(
        everything,
        "import anyflow, anyflow.durable, anyflow.testing, anyflow.graph, anyflow.cli",
    )
    assert done.returncode == 0, done.stderr


RUN_COMMAND = "from anyflow.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("missing", ["cyclopts", "rich"])
def test_the_command_without_the_cli_extra_says_so_in_one_line(missing: str) -> None:
    done = without(missing, RUN_COMMAND, "run", "examples/quickstart.py:OrderFlow")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: the anyflow command needs the cli extra ({missing} is missing): "
        "pip install 'anyflow[cli]'\n"
    )


def test_serve_without_the_server_extra_says_so_in_one_line() -> None:
    done = without("starlette", RUN_COMMAND, "serve", "examples/quickstart.py:OrderFlow")
    assert done.returncode == 2
    assert done.stderr == (
        "error: serving needs the server extra (starlette is missing): "
        "pip install 'anyflow[server]'\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["run", "examples/quickstart.py:OrderFlow", "--backend", "trio"],
        ["serve", "examples/quickstart.py:OrderFlow", "--backend", "trio"],
    ],
)
def test_the_command_on_trio_without_trio_names_the_extra(command: list[str]) -> None:
    done = without("trio", RUN_COMMAND, *command)
    assert done.returncode == 2
    assert done.stderr == "error: --backend trio needs trio: pip install 'anyflow[trio]'\n"


def test_the_server_module_on_trio_without_trio_names_the_extra() -> None:
    code = "from anyflow.server.__main__ import main; sys.exit(main(sys.argv[1:]))"
    done = without("trio", code, "examples/quickstart.py:OrderFlow", "--backend", "trio")
    assert done.returncode == 2
    assert done.stderr == "error: --backend trio needs trio: pip install 'anyflow[trio]'\n"


@pytest.mark.parametrize(
    "example",
    [
        "quickstart",
        "human_in_the_loop",
        "retries_and_errors",
        "serialization",
        "streaming",
        "tracing",
        "durable",
        "server",
    ],
)
def test_an_example_on_trio_without_trio_names_the_extra(example: str) -> None:
    code = "import runpy; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    done = without("trio", code, f"examples/{example}.py", "--backend", "trio")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "error: --backend trio needs trio: pip install 'anyflow[trio]'\n"


def test_trio_is_an_extra() -> None:
    import tomllib  # Python 3.11+, as the test environment

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert [dep.split(">")[0] for dep in extras["trio"]] == ["trio"]
