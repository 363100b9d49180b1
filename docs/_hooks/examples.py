"""mkdocs hook: the pages link to ``../examples/<name>.py``, outside docs/.

On the site those files are served under ``examples/`` (copied from the
repository's examples/ folder as they are), and the links are rewritten to
point there, so ``mkdocs build --strict`` checks them like any other link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LINK = re.compile(r"\]\(\.\./examples/([\w.-]+\.py)\)")


def on_files(files: Files, config: Any) -> Files:
    for path in sorted(EXAMPLES.glob("*.py")):
        files.append(File.generated(config, f"examples/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    depth = page.file.src_uri.count("/")
    return LINK.sub(lambda m: f"]({'../' * depth}examples/{m.group(1)})", markdown)
