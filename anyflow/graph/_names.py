"""Two helpers every kind of node uses: unique ids and a thing's own docstring."""

from __future__ import annotations

import inspect

__all__ = ["own_doc", "unique"]


def own_doc(obj: object) -> str | None:
    """``obj``'s own docstring, never one inherited (``inspect.getdoc`` would give
    a workflow without one the docstring of ``Workflow``)."""
    doc = getattr(obj, "__doc__", None)
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def unique(preferred: str, taken: set[str], sep: str = "#") -> str:
    """``preferred``, or ``preferred#2``, ``#3``... if taken; recorded as taken."""
    node_id, n = preferred, 1
    while node_id in taken:
        n += 1
        node_id = f"{preferred}{sep}{n}"
    taken.add(node_id)
    return node_id
