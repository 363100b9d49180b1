"""docs/cli.md tells the truth: its files are written out, its ``$`` commands
run in a shell in that directory, and each prints what the page shows (``...``
stands for what changes from one run to the next, such as times)."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from .conftest import ROOT

if TYPE_CHECKING:
    from pathlib import Path

PAGE = ROOT / "docs" / "cli.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sessions(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` of every console block, in order."""
    found: list[tuple[str, str]] = []
    for kind, body in BLOCK.findall(text):
        if kind != "console":
            continue
        for chunk in re.split(r"^\$ ", body, flags=re.MULTILINE)[1:]:
            command, _, output = chunk.partition("\n")
            found.append((command, output))
    return found


def test_every_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    text = PAGE.read_text()
    for kind, body in BLOCK.findall(text):
        first, _, _ = body.partition("\n")
        if kind == "python" and first.startswith("# ") and first.endswith(".py"):
            (tmp_path / first[2:]).write_text(body)
    assert (tmp_path / "greet.py").exists()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, run in [("anyflow", f"{sys.executable} -m anyflow"), ("python", sys.executable)]:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),  # anyflow itself, as if installed
        "PYTHONUNBUFFERED": "1",
    }
    checker = doctest.OutputChecker()
    examples = sessions(text)
    assert len(examples) >= 10
    for command, expected in examples:
        done = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        assert checker.check_output(expected, done.stdout, doctest.ELLIPSIS), (
            f"$ {command}\nexpected:\n{expected}\ngot:\n{done.stdout}"
        )
    assert (tmp_path / "hello.html").read_text().count('data-node-type="step"') == 2
