"""The layers above the engine import only public modules of the engine and of each other.

The engine is anyflow's top-level modules and the packages ``_core``,
``_backends``, ``runtime``, ``context`` and ``serialization``: inside it, private
modules may be shared.  The layers above it (durable, dbos, server, client, cli,
graph, testing, tracing) are built on the same public API a user has, so a
layer never imports another package's ``_private`` module, nor a ``_private``
name from it (a package's own private modules are its own).  When a layer needs
something the engine keeps private, the engine offers it publicly: the runtime's
vocabulary is ``anyflow.runtime.vocabulary``, the journal's records are
``anyflow.durable.journal``, finding a TARGET is ``anyflow.targets``.  Nor
does a layer call a private attribute of another package's object (see
``attribute_reaches`` below): ``store.restore(...)``, not ``store._load(...)``.

Like ``tests/core/test_purity.py``, this parses each module (nothing is
executed); imports under ``TYPE_CHECKING`` and inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import anyflow

ROOT = Path(anyflow.__file__).parent
LAYERS = frozenset({"durable", "dbos", "server", "client", "cli", "graph", "testing", "tracing"})

FIXES = {
    "_core": "import the runtime's vocabulary from anyflow.runtime.vocabulary",
    "_driver": "use anyflow.runtime (terminal_event) or extend the runtime's public interface",
    "_backends": "use anyflow.runtime.clock, or give the engine a public module for it",
    "_journal": "import the journal's records from anyflow.durable.journal",
    "_target": "import the TARGET loader from anyflow.targets (and open_store from "
    "anyflow.durable)",
}


def _private(segment: str) -> bool:
    return segment.startswith("_") and not (segment.startswith("__") and segment.endswith("__"))


def _package(parts: tuple[str, ...]) -> str:
    """The top-level package (or top-level module) of ``anyflow.<parts>``."""
    return parts[0].removesuffix(".py")


def _absolute(module_parts: tuple[str, ...], node: ast.ImportFrom) -> list[str]:
    """The dotted ``anyflow...`` names that ``node`` (in module ``module_parts``) imports."""
    if node.level == 0:
        base = (node.module or "").split(".")
    else:
        # ``module_parts`` is e.g. ("anyflow", "cli", "_runs"); a package's
        # ``__init__`` is given as its package's parts plus "__init__".
        package = list(module_parts[:-1])
        base = package[: len(package) - (node.level - 1)]
        if node.module:
            base += node.module.split(".")
    names = [".".join(base)]
    names += [".".join([*base, alias.name]) for alias in node.names if alias.name != "*"]
    return names


def violations(path: Path, source: str | None = None) -> list[str]:
    """One line per import in ``path`` of another package's private module or name."""
    rel = path.relative_to(ROOT.parent)
    module_parts = tuple(rel.with_suffix("").parts)
    mine = _package(module_parts[1:]) if len(module_parts) > 1 else ""
    if mine not in LAYERS:
        return []
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = _absolute(module_parts, node)
        else:
            continue
        for dotted in targets:
            parts = dotted.split(".")
            if parts[0] != "anyflow" or len(parts) < 2 or _package(tuple(parts[1:])) == mine:
                continue
            private = next((seg for seg in parts[1:] if _private(seg)), None)
            if private is None:
                continue
            fix = FIXES.get(private, "import it from the owning package's public module")
            found.append(f"{rel}:{node.lineno}: {mine} imports {dotted} ({fix})")
            break
    return found


LAYER_FILES = sorted(
    path
    for layer in LAYERS
    for path in (ROOT / layer).rglob("*.py")
    if "static" not in path.relative_to(ROOT).parts
)


def test_every_layer_has_modules() -> None:
    assert {path.relative_to(ROOT).parts[0] for path in LAYER_FILES} == LAYERS


def test_layers_import_only_public_modules_of_other_packages() -> None:
    problems = [line for path in LAYER_FILES for line in violations(path)]
    assert not problems, (
        "a layer above the engine imports another package's private module or name "
        "(DESIGN.md, Package layout): import the public name instead, or make what "
        "the layer needs public where it is defined:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("cli/_x.py", "from .._core.state import RunState\n", ["anyflow._core.state"]),
        ("dbos/_x.py", "from ..runtime._driver import terminal_event\n", ["runtime._driver"]),
        ("server/x.py", "from ..cli._target import load_workflow\n", ["anyflow.cli._target"]),
        ("graph/_x.py", "def f():\n    from ..durable._journal import decode_ticks\n", ["2:"]),
        ("testing/_x.py", "import anyflow._backends._asyncio\n", ["anyflow._backends"]),
        ("tracing/_x.py", "from ..runtime import _driver\n", ["anyflow.runtime._driver"]),
        ("durable/__init__.py", "from ..server import _runs\n", ["anyflow.server._runs"]),
        ("durable/__init__.py", "from ._journal import replay\n", []),
        ("graph/_x.py", "from ._graph import _escape\nfrom . import _names\n", []),
        ("cli/_x.py", "from ..runtime.vocabulary import Tick\nfrom ..durable import Store\n", []),
        ("runtime/_x.py", "from .._core.state import RunState\n", []),
        ("dbos/_x.py", "from dbos._error import DBOSException\n", []),
        ("server/_x.py", "from ..events import __all__\n", []),
    ],
)
def test_the_check_finds_what_it_should(where: str, source: str, expected: list[str]) -> None:
    found = violations(ROOT / where, source)
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line


# Private attributes.  A layer reaches into no other package's object either:
# ``store._load(...)`` or ``workflow._check_sendable(...)`` from a layer is a
# private attribute of the engine, used as if it were public.  Without types a
# parse cannot tell whose object ``x`` is in ``x._name``, so the check is by
# name: a layer may use ``x._name`` only for a name its own package defines
# (a method, a class or module attribute, a slot, an attribute it assigns).
# A name that is also the engine's is still caught if the layer does not
# define it.  Third-party objects' private names the layers knowingly use
# are listed with their reason.

FOREIGN_PRIVATE = {
    "_sys_db": "DBOS keeps its system database there; dbos/_bridge.py reads it",
    "_dbos_global_instance": "DBOS's process-wide instance; dbos/_process.py asks if launched",
    "_launched": "the same DBOS instance's flag",
    "_hypothesis_internal_use_settings": "hypothesis' settings on a test; the pytest plugin",
    "_hypothesis_internal_add_digest": "hypothesis' database key for a test; the pytest plugin",
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private(tree: ast.AST) -> set[str]:
    """The private names a module defines for its own objects."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, object.__setattr__(self, "_x", ...)
    return {name for name in names if _is_private(name)}


def _trees(layer: str) -> dict[Path, ast.AST]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8"))
        for path in LAYER_FILES
        if path.relative_to(ROOT).parts[0] == layer
    }


def attribute_reaches(trees: dict[Path, ast.AST]) -> list[str]:
    """One line per ``x._name`` (``x`` not ``self`` or ``cls``) in ``trees``, one
    package's modules, whose ``_name`` that package does not define."""
    own = set().union(*(_defined_private(tree) for tree in trees.values()))
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}:
                continue
            if node.attr in own or node.attr in FOREIGN_PRIVATE:
                continue
            rel = path.relative_to(ROOT.parent) if path.is_absolute() else path
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_reach_no_private_attribute_of_another_package(layer: str) -> None:
    problems = attribute_reaches(_trees(layer))
    assert not problems, (
        f"{layer} uses a private attribute it does not define (DESIGN.md, Package "
        "layout): use the owner's public method, or give it one (documented, tested); "
        "a third-party object's private name goes in FOREIGN_PRIVATE with why:\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"_a.py": "def f(store):\n    store._load(1)\n"}, ["store._load"]),
        ({"_a.py": "def f(h):\n    return h._require_started('x').wait()\n"}, ["h._require"]),
        ({"_a.py": "class A:\n    def _go(self): ...\n", "_b.py": "def f(a):\n    a._go()\n"}, []),
        ({"_a.py": "class A:\n    __slots__ = ('_n',)\n\ndef f(a):\n    return a._n\n"}, []),
        ({"_a.py": "def f(a):\n    a._n = 1\n    return a._n\n"}, []),
        ({"_a.py": "def f(self):\n    return self._anything\n"}, []),
        ({"_a.py": "def f(i):\n    return i._launched\n"}, []),
    ],
)
def test_the_attribute_check_finds_what_it_should(
    sources: dict[str, str], expected: list[str]
) -> None:
    found = attribute_reaches({Path(name): ast.parse(text) for name, text in sources.items()})
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line
