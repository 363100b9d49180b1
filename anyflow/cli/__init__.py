"""The ``anyflow`` command: run, draw, serve and inspect workflows.

Built on cyclopts (commands and options read from type hints and docstrings,
with no decorator stack; it brings rich, which draws the live view), so each
command is a plain typed function in its own module.  Importing this package
imports neither: finding a TARGET (``anyflow.targets``) and opening a
``--store`` (``anyflow.durable.open_store``) are shared with ``python -m
anyflow.server``, which has no need of them.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_NEEDS = ("cyclopts", "rich")
"""What the ``cli`` extra brings."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``anyflow`` command on ``argv`` (``sys.argv[1:]`` by default);
    return its exit status (2, with one line naming the extra, when the
    ``cli`` extra is not installed)."""
    try:
        from ._app import run_app
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _NEEDS:
            raise
        print(
            f"error: the anyflow command needs the cli extra ({missing} is missing): "
            "pip install 'anyflow[cli]'",
            file=sys.stderr,
        )
        return 2
    return run_app(argv)
