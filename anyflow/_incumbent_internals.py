"""Names of llama-index-workflows' internal modules, importable and refused on use.

A program (or a test file) written for the incumbent sometimes imports one of
its internal classes beside the public API: its broker state, its tick
models, its step ids.  anyflow has no counterpart for them: its run state and
ticks are its own (``anyflow.runtime.vocabulary``).  Failing the import would
take the whole module down with it, including every part that uses only the
public API; so the name imports, and the first use of it (building one,
reading a class attribute) raises ``NotImplementedError`` naming the name,
why it has no counterpart and what to use instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["refused_module_names"]

_WHY = (
    "{module}.{name} is an internal of llama-index-workflows with no counterpart in "
    "anyflow: {instead} (docs/migration.md, 'Internals')"
)


class _RefusedMeta(type):
    """A class that refuses to be built or read (its name and message only)."""

    _refusal: str

    def __call__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(cls._refusal)

    def __getattr__(cls, attribute: str) -> NoReturn:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise NotImplementedError(cls._refusal)


def _refused(module: str, name: str, instead: str) -> type:
    refusal = _WHY.format(module=module, name=name, instead=instead)
    return _RefusedMeta(name, (), {"_refusal": refusal, "__module__": module, "__doc__": refusal})


def refused_module_names(module: str, instead: str, *names: str) -> Any:
    """A module ``__getattr__`` that hands out a refused class for each of
    ``names`` (saying to use ``instead``) and ``AttributeError`` otherwise."""
    cache: dict[str, type] = {}

    def __getattr__(name: str) -> type:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if name not in cache:
            cache[name] = _refused(module, name, instead)
        return cache[name]

    return __getattr__
