"""llama-index-workflows' path ``workflows.context.utils``: its two helpers for
naming a value's class and importing a name back, for imports that port by a
change of names.

They speak the incumbent's dotted form (``package.module.Name``).  anyflow's
own saved data names types as ``module:Qualname`` (``anyflow.serialization``),
which also reaches nested classes; these two are for code that builds or reads
the dotted form itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["get_qualified_name", "import_module_from_qualified_name"]


def get_qualified_name(value: Any) -> str:
    """``module.ClassName`` of ``value``'s class, in the module ``value`` names.

    :raises AttributeError: when ``value`` has no ``__module__`` (a str, an int).
    """
    try:
        module: str = value.__module__
    except AttributeError as exc:
        raise AttributeError(f"Object {value} does not have required attributes: {exc}") from exc
    return f"{module}.{type(value).__name__}"


def import_module_from_qualified_name(qualified_name: str) -> Any:
    """The object a dotted ``module.name`` names: the module is imported, the
    last part is looked up in it.

    :raises ValueError: for a name without a dot.
    :raises ImportError: when the module does not import.
    :raises AttributeError: when the module has no such name.
    """
    module_name, dot, attribute = qualified_name.rpartition(".")
    if not dot or not module_name:
        raise ValueError(
            f"Qualified name must be in format 'module.attribute', got {qualified_name!r}"
        )
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"Failed to import module {module_name}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise AttributeError(
            f"Attribute {attribute} not found in module {module_name}: {exc}"
        ) from exc
