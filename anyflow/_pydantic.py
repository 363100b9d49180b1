"""pydantic, when a program uses it: an optional integration, never an import of ours.

anyflow does not depend on pydantic.  A user class can only be a pydantic model
if the program has imported pydantic already, so every check here looks at
``sys.modules`` and answers "no" when pydantic is not loaded, without importing
it.  That keeps the base install (anyio, attrs, cattrs) enough for everything
that does not involve a user's pydantic model.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["dump_model", "is_model", "is_model_class", "load_model", "model_problem"]


def is_model_class(cls: object) -> bool:
    """Whether ``cls`` is a pydantic ``BaseModel`` subclass (False without pydantic)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def is_model(value: object) -> bool:
    """Whether ``value`` is an instance of a pydantic model."""
    return is_model_class(type(value))


def model_problem(cls: type[Any]) -> str | None:
    """Why the pydantic model ``cls`` cannot be a workflow's state class, or None.

    A run starts from ``cls()`` and its steps change the state in place, so
    every field needs a default and the model must not be frozen.
    """
    name = cls.__qualname__
    if cls.model_config.get("frozen"):
        return (
            f"{name} is frozen, but steps change the state in place: remove "
            f"frozen=True from its model_config"
        )
    missing = [n for n, f in cls.model_fields.items() if f.is_required()]
    if missing:
        return (
            f"give every field of {name} a default (each run starts from {name}()): "
            f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} none"
        )
    return None


def dump_model(value: Any) -> dict[str, Any]:
    """A model's fields as JSON-safe data, through its own serializers."""
    data: dict[str, Any] = value.model_dump(mode="json")
    return data


def load_model(cls: type[Any], data: Any) -> Any:
    """A model of class ``cls`` validated from ``data`` (raises pydantic's
    ``ValidationError``, a ``ValueError``, when it does not fit)."""
    return cls.model_validate(data)
