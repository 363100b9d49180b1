"""``DictState``: the untyped store's state, a dictionary whose keys read as attributes."""

from __future__ import annotations

from typing import Any

__all__ = ["DictState"]


class DictState(dict[str, Any]):
    """The state of a run whose steps take a bare ``ctx: Context`` (or
    ``Context[DictState]``): a ``dict`` whose keys can also be read and written
    as attributes, so ``state["user"]`` and ``state.user`` are the same value.

    It is a real ``dict`` (equal to one with the same items, and JSON-safe when
    its values are), which keeps the untyped store what it always was; the
    attribute access is what llama-index-workflows' ``DictState`` offers, so
    code written for it ports unchanged.  A key that is not a valid identifier,
    or that names a ``dict`` method (``items``, ``get``, ...), is reached with
    ``state["key"]``.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not dict methods or attributes.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and friends probe dunders
        try:
            return self[name]
        except KeyError:
            keys = ", ".join(map(str, self)) or "none"
            # from None: a missing attribute, said as Python says it
            raise AttributeError(f"this DictState has no key {name!r} (its keys: {keys})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            # from None: a missing attribute, said as Python says it
            raise AttributeError(f"this DictState has no key {name!r}") from None

    def __repr__(self) -> str:
        return f"DictState({dict.__repr__(self)})"

    def to_dict(self) -> dict[str, Any]:
        """The items as a plain ``dict`` (a shallow copy)."""
        return dict(self)
