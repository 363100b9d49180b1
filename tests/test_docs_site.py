"""The documentation site builds with ``mkdocs build --strict`` (broken links,
missing pages and docstrings griffe cannot read all fail it), and has its pages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MKDOCS = Path(sys.executable).parent / "mkdocs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = str(MKDOCS) if MKDOCS.exists() else shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "concepts/index.html",
        "streaming/index.html",
        "durability/index.html",
        "testing/index.html",
        "server/index.html",
        "migration/index.html",
        "performance/index.html",
    ],
)
def test_page_is_built(site: Path, page: str) -> None:
    assert (site / page).is_file()


@pytest.mark.parametrize(
    ("page", "name"),
    [
        ("anyflow", "anyflow.Workflow"),
        ("anyflow", "anyflow.WorkflowHandler"),
        ("durable", "anyflow.durable.DurableRuntime"),
        ("testing", "anyflow.testing.simulate"),
        ("server", "anyflow.server.WorkflowServer"),
        ("client", "anyflow.client.WorkflowClient"),
        ("graph", "anyflow.graph.workflow_graph"),
        ("representation", "anyflow.representation.get_workflow_representation"),
        ("testing", "anyflow.testing.WorkflowTestRunner"),
        ("resource", "anyflow.resource.ResourceConfig"),
        ("state_store", "anyflow.state_store.DictState"),
    ],
)
def test_the_reference_documents(site: Path, page: str, name: str) -> None:
    html = (site / "reference" / page / "index.html").read_text()
    assert f'id="{name}"' in html


def test_the_examples_the_pages_link_to_are_served(site: Path) -> None:
    html = (site / "server" / "index.html").read_text()
    assert 'href="../examples/server.py"' in html
    served = site / "examples" / "server.py"
    assert served.read_text() == (ROOT / "examples" / "server.py").read_text()
