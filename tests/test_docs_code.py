"""Every code example in docs/*.md and README.md runs in the test suite.

Each fenced ``python`` block falls under exactly one rule, and a block under
none of them fails :func:`test_every_block_is_covered`:

* **run**: a complete program (it calls ``anyio.run(``) is run in a fresh
  interpreter, once on asyncio and once on trio (``anyio.run`` is made to use
  the backend under test), and must exit with status 0; when the page goes on
  with "It prints:" and a plain fenced block, the output must be that block;
* **doctest**: a block of ``>>>`` lines is run with :mod:`doctest`, with the
  public names of ``anyflow`` in scope, and must print what it shows;
* **excerpt**: any other block must be an excerpt of an example file in
  examples/ that the test suite runs (a test names the file), of a test
  module, or of a program block of the pages: its lines,
  shifted by one indentation, appear there contiguously, in order. Comments
  are ignored on both sides, and a line that is only ``...`` stands for lines
  left out (the parts around it must still appear in that order, in the same
  file);
* **run after**: a fragment right after ``<!-- run after: examples/x.py -->``
  (or ``<!-- run after: anyflow -->``) is run as the body of an ``async def``
  in the namespace of that example module (or of ``anyflow``'s public names),
  on asyncio and on trio, and must not raise: it uses what the example
  defines;
* **test module**: a block right after
  ``<!-- test module beside: examples/x.py -->`` is a pytest module written as
  a user would: it is saved as ``test_page.py`` next to a copy of that example,
  with a ``conftest.py`` that enables ``anyflow.testing.pytest_plugin`` as the
  page says, and ``python -m pytest`` must pass it, on asyncio and on trio;
* **page tested elsewhere**: the blocks of a page listed in ``TESTED_BY`` are
  run by the test module named there, which reads the page itself (the module
  must exist and name the page);
* **marked**: a block right after ``<!-- not run: reason -->`` is skipped, for
  the reason given. A marked block that another rule covers fails too, so a
  mark cannot outlive its reason.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

import anyflow

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.+\S) -->$")
# Blocks marked not run, at most: raise it only with a reason in the mark.
MAX_MARKED = 8
# Pages whose blocks a test module of their own extracts and runs.
TESTED_BY = {"cli.md": "tests/cli/test_docs.py"}
RUN_AFTER = re.compile(r"^<!-- run after: (?P<scope>anyflow|examples/\w+\.py) -->$")
TEST_MODULE = re.compile(r"^<!-- test module beside: (?P<example>examples/\w+\.py) -->$")


@attrs.frozen
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    lines: tuple[str, ...]
    not_run: str | None  # the reason, for a marked block
    after: str | None  # "anyflow" or "examples/x.py", for a fragment run after it
    prints: tuple[str, ...] | None  # the output the page shows right after it
    beside: str | None = None  # "examples/x.py", for a pytest module run next to it

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_program(self) -> bool:
        return any(line.lstrip().startswith("anyio.run(") for line in self.lines)

    @property
    def is_doctest(self) -> bool:
        return bool(self.lines) and self.lines[0].startswith(">>> ")


def shown_output(lines: list[str], i: int) -> tuple[str, ...] | None:
    """The plain fenced block after "It prints:", if the text after line ``i``
    starts so."""
    rest = [line for line in lines[i:] if line.strip()]
    if len(rest) < 2 or not rest[0].startswith("It prints") or rest[1] != "```":
        return None
    start = lines.index(rest[1], i + 1)
    end = lines.index("```", start + 1)
    return tuple(lines[start + 1 : end])


def read_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            before = lines[i - 1].strip() if i > 0 else ""
            mark = NOT_RUN.match(before)
            after = RUN_AFTER.match(before)
            module = TEST_MODULE.match(before)
            blocks.append(
                Block(
                    page,
                    i + 1,
                    tuple(lines[i + 1 : end]),
                    mark["reason"] if mark else None,
                    after["scope"] if after else None,
                    shown_output(lines, end + 1),
                    module["example"] if module else None,
                )
            )
            i = end
        i += 1
    return blocks


BLOCKS = [block for page in PAGES for block in read_blocks(page)]
OURS = [block for block in BLOCKS if block.page.name not in TESTED_BY]
PROGRAMS = [block for block in OURS if block.is_program]
FRAGMENTS = [block for block in OURS if block.after is not None]
DOCTESTS = [block for block in OURS if block.is_doctest]
TEST_MODULES = [block for block in OURS if block.beside is not None]


def examples_under_test() -> dict[str, list[str]]:
    """The example files that some test runs (it names the file), by name."""
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    return {
        path.name: path.read_text().splitlines()
        for path in sorted(EXAMPLES.glob("*.py"))
        if f'"{path.stem}"' in tests or f"{path.stem}.py" in tests
    }


def code_lines(lines: list[str] | tuple[str, ...]) -> list[str]:
    """The lines without comments, trailing blanks, comment-only lines, or
    blank lines at either end."""
    out = []
    for line in lines:
        stripped = line.split("  # ")[0].rstrip() if "  # " in line else line.rstrip()
        if stripped.lstrip().startswith("#"):
            continue
        out.append(stripped)
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def find(chunk: list[str], source: list[str], start: int) -> int | None:
    """Where ``chunk`` (dedented) appears in ``source`` at or after ``start``,
    all of its lines shifted by the same indentation; the index after it."""
    for k in range(start, len(source) - len(chunk) + 1):
        first = source[k]
        if not first.endswith(chunk[0]):
            continue
        indent = first[: len(first) - len(chunk[0])]
        if indent.strip():
            continue
        if all(source[k + i] == (indent + line if line else "") for i, line in enumerate(chunk)):
            return k + len(chunk)
    return None


def is_excerpt(block: Block, source: list[str]) -> bool:
    body = code_lines(textwrap.dedent("\n".join(block.lines)).splitlines())
    chunks: list[list[str]] = [[]]
    for line in body:
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line)
    chunks = [code_lines(textwrap.dedent("\n".join(c)).splitlines()) for c in chunks]
    chunks = [c for c in chunks if c]
    if not chunks:
        return False
    source = code_lines(source)
    position: int | None = 0
    for chunk in chunks:
        assert position is not None
        position = find(chunk, source, position)
        if position is None:
            return False
    return True


def excerpt_of(block: Block) -> str | None:
    sources = examples_under_test()
    sources.update(
        {
            str(path.relative_to(ROOT)): path.read_text().splitlines()
            for path in sorted((ROOT / "tests").rglob("test_*.py"))
            if path != Path(__file__)
        }
    )
    sources.update({program.name: list(program.lines) for program in PROGRAMS})
    for name, source in sources.items():
        if name != block.name and is_excerpt(block, source):
            return name
    return None


def covered_by(block: Block) -> str | None:
    tester = TESTED_BY.get(block.page.name)
    if tester is not None:
        assert f"docs/{block.page.name}" in (ROOT / tester).read_text().replace('" / "', "/")
        return f"run by {tester}"
    if block.after is not None:
        return f"run after {block.after}"
    if block.beside is not None:
        return f"a test module beside {block.beside}"
    if block.is_program:
        return "run"
    if block.is_doctest:
        return "doctest"
    source = excerpt_of(block)
    return f"excerpt of {source}" if source else None


def test_the_pages_have_blocks() -> None:
    assert len(BLOCKS) > 20
    assert len(PROGRAMS) >= 8


def test_every_block_is_covered() -> None:
    uncovered = [b.name for b in BLOCKS if b.not_run is None and covered_by(b) is None]
    assert not uncovered, (
        f"these python blocks are neither run nor an excerpt of a tested example: {uncovered}; "
        "make them one, or put <!-- not run: reason --> right before the block"
    )


def test_marks_are_few_and_needed() -> None:
    marked = [b for b in BLOCKS if b.not_run is not None]
    stale = [f"{b.name} ({covered_by(b)})" for b in marked if covered_by(b) is not None]
    assert not stale, f"these blocks are marked not run, but are covered: {stale}"
    assert len(marked) <= MAX_MARKED


RUNNER = """
import functools, runpy, sys
import anyio
_run = anyio.run
def run(func, *args, backend="asyncio", backend_options=None):
    return _run(func, *args, backend=sys.argv[2])
anyio.run = run
runpy.run_path(sys.argv[1], run_name="__main__")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("block", PROGRAMS, ids=lambda b: b.name)
def test_program_runs(block: Block, backend: str, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text("\n".join(block.lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), backend],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block.name} on {backend}:\n{done.stdout}\n{done.stderr}"
    if block.prints is not None:  # what the page says it prints
        assert done.stdout.splitlines() == list(block.prints)


@pytest.mark.parametrize("block", DOCTESTS, ids=lambda b: b.name)
def test_doctest_block(block: Block) -> None:
    scope = {name: getattr(anyflow, name) for name in anyflow.__all__}
    parser = doctest.DocTestParser()
    test = parser.get_doctest("\n".join(block.lines) + "\n", scope, block.name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test)
    assert result.failed == 0, f"{block.name}: the doctest failed"


def scope_of(after: str) -> dict[str, object]:
    """The globals a fragment runs in: a copy, so fragments do not share names."""
    if after == "anyflow":
        return {name: getattr(anyflow, name) for name in anyflow.__all__}
    name = f"anyflow_docs_fragment_{Path(after).stem}"
    module = sys.modules.get(name)
    if module is None:  # imported once: its event classes stay the same classes
        spec = importlib.util.spec_from_file_location(name, ROOT / after)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return dict(vars(module))


@pytest.mark.anyio
@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda b: b.name)
async def test_fragment_runs(block: Block) -> None:
    assert block.after is not None
    scope = scope_of(block.after)
    body = textwrap.indent(textwrap.dedent("\n".join(block.lines)), "    ")
    exec(compile(f"async def __fragment__():\n{body}\n", block.name, "exec"), scope)
    await scope["__fragment__"]()  # type: ignore[operator]


@pytest.mark.parametrize("block", TEST_MODULES, ids=lambda b: b.name)
def test_test_module_passes(block: Block, tmp_path: Path) -> None:
    assert block.beside is not None
    (tmp_path / Path(block.beside).name).write_text((ROOT / block.beside).read_text())
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["anyflow.testing.pytest_plugin"]\n')
    (tmp_path / "test_page.py").write_text("\n".join(block.lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_page.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{block.name}:\n{done.stdout}\n{done.stderr}"
    tests = sum(line.lstrip().startswith("async def test_") for line in block.lines)
    # each async test ran on both backends
    assert f"{2 * tests} passed" in done.stdout.splitlines()[-1], done.stdout
