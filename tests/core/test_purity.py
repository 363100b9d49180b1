"""The reducer stays sans-IO: ``anyflow/_core`` imports only pure modules.

Like h11's ``_state.py``, the core must not import anyio, read a clock, draw a
random number or log: everything it knows arrives as a tick.  This test parses
each module's AST (nothing is executed) and names every forbidden import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import anyflow._core

CORE_DIR = Path(anyflow._core.__file__).parent

ALLOWED = frozenset(
    {"__future__", "attrs", "typing", "collections", "collections.abc", "enum", "types"}
)
"""Absolute imports the core may use; relative imports must stay inside ``_core``."""

CORE_FILES = sorted(CORE_DIR.glob("*.py"))


def forbidden_imports(path: Path) -> list[str]:
    """One line per forbidden import in ``path``: ``file:line: module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                # ``from . import x`` or ``from .state import x``: inside _core.
                continue
            if node.level > 1:
                dots = "." * node.level
                modules = [f"{dots}{node.module or ''}"]
            else:
                assert node.module is not None
                modules = [node.module]
        else:
            continue
        for module in modules:
            if module not in ALLOWED:
                problems.append(f"{path.name}:{node.lineno}: imports {module!r}")
    return problems


def test_core_has_modules() -> None:
    names = {path.name for path in CORE_FILES}
    assert {"state.py", "ticks.py", "commands.py", "reducer.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda path: path.name)
def test_core_module_imports_only_pure_modules(path: Path) -> None:
    problems = forbidden_imports(path)
    assert not problems, (
        "anyflow/_core must stay pure (allowed: "
        + ", ".join(sorted(ALLOWED))
        + ", and relative imports within _core):\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import anyio\n", ["mod.py:1: imports 'anyio'"]),
        ("import os, typing\n", ["mod.py:1: imports 'os'"]),
        ("\nfrom time import monotonic\n", ["mod.py:2: imports 'time'"]),
        ("def f():\n    import random\n", ["mod.py:2: imports 'random'"]),
        ("from ..workflow import Workflow\n", ["mod.py:1: imports '..workflow'"]),
        ("from .. import runtime\n", ["mod.py:1: imports '..'"]),
        ("import collections.abc\nfrom .state import RunState\nfrom . import ticks\n", []),
        ("from __future__ import annotations\nimport attrs\nfrom enum import Enum\n", []),
    ],
)
def test_checker_catches_forbidden_imports(
    tmp_path: Path, source: str, expected: list[str]
) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    assert forbidden_imports(path) == expected
