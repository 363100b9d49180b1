"""Bad input: one line saying what is wrong and how to fix it, status 2, no traceback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from .conftest import FLOWS_FILE, FLOWS_MODULE, anyflow

if TYPE_CHECKING:
    from collections.abc import Callable

CASES = {
    "no-file": (
        ["run", "tests/cli/nowhere.py:Hello"],
        r"error: no file 'tests/cli/nowhere.py' \(check the path; it is relative to .*\)",
    ),
    "no-module": (
        ["run", "tests.cli.nowhere:Hello"],
        r"error: no module 'tests.cli.nowhere' \(is it on PYTHONPATH\? .*\)",
    ),
    "no-name": (
        ["run", f"{FLOWS_MODULE}:Helo"],
        r"error: 'tests.cli.flows' has no 'Helo'; its workflows are: Broken, Hello, Unfinished, hello",
    ),
    "not-a-workflow": (
        ["run", f"{FLOWS_FILE}:not_a_workflow"],
        r"error: tests/cli/flows.py:not_a_workflow is 42, not a Workflow: "
        r"name a Workflow subclass or instance",
    ),
    "invalid-workflow": (
        ["run", f"{FLOWS_MODULE}:Unfinished"],
        r"error: tests.cli.flows:Unfinished: At least one Event of type StopEvent must be returned by any step\. \(Workflow 'Unfinished' has no @step that returns StopEvent\.\) .*",
    ),
    "no-colon": (
        ["draw", FLOWS_MODULE, "-o", "x.mmd"],
        r"error: TARGET is module:name or path/to/file.py:name, not 'tests.cli.flows' .*",
    ),
    "malformed-json": (
        ["run", f"{FLOWS_MODULE}:Hello", "--input", "{name: Ada}"],
        r"error: --input is not valid JSON \(.*\): pass an object, e.g. --input .*",
    ),
    "json-not-an-object": (
        ["run", f"{FLOWS_MODULE}:Hello", "--input", '["Ada"]'],
        r"error: --input must be a JSON object of the start event's fields, not .*",
    ),
    "unknown-field": (
        ["run", f"{FLOWS_MODULE}:Hello", "--input", '{"nmae": "Ada"}'],
        r"error: --input does not fit the start event: Greet is missing required "
        r"field\(s\): name \(it got free field\(s\) nmae: a misspelling\?\)",
    ),
    "missing-field": (
        ["run", f"{FLOWS_MODULE}:Hello"],
        r"error: --input does not fit the start event: "
        r"Greet is missing required field\(s\): name",
    ),
    "bad-backend": (
        ["run", f"{FLOWS_MODULE}:Hello", "--backend", "curio"],
        r'error: Invalid value "curio" for --backend\. Choose from: "asyncio", "trio"\. .*',
    ),
    "bad-suffix": (
        ["draw", f"{FLOWS_MODULE}:Hello", "-o", "graph.png"],
        r"error: cannot tell what to draw from 'graph.png': end the file name in \.mmd .*",
    ),
    "bad-store": (
        ["runs", "list", "--store", "mysql://db"],
        r"error: unknown store 'mysql://db': use memory, sqlite:///path/to/runs.db .*",
    ),
    "unknown-command": (["walk"], r'error: Unknown command "walk"\. .*'),
}


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_status_2(
    cli: Callable[..., tuple[int, str, str]], args: list[str], message: str
) -> None:
    status, out, err = cli(*args)
    assert status == 2
    assert re.fullmatch(message + "\n", err), err
    assert out == ""


def test_a_user_sees_the_same_from_the_command() -> None:
    done = anyflow("run", "tests/cli/nowhere.py:Hello")
    assert done.returncode == 2
    assert done.stderr.startswith("error: no file 'tests/cli/nowhere.py'")
    assert done.stderr.count("\n") == 1
