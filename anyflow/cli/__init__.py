"""The ``anyflow`` command: run, draw, serve and inspect workflows.

Built on cyclopts (commands and options read from type hints and docstrings,
with no decorator stack; it brings rich, which draws the live view), so each
command is a plain typed function in its own module.  Importing this package
imports neither: ``anyflow.cli._target`` is shared with ``python -m
anyflow.server``, which has no need of them.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``anyflow`` command on ``argv`` (``sys.argv[1:]`` by default);
    return its exit status."""
    from ._app import run_app

    return run_app(argv)
