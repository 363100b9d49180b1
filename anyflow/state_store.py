"""The run's state store, under the name of llama-index-workflows' module
(``workflows.context.state_store``; ``anyflow.context.state_store`` is the same).

* ``StateStore``: what ``ctx.store`` is; ``InMemoryStateStore`` is the same
  class under the incumbent's name for its default store;
* ``DictState``: the untyped state, a dictionary whose keys read as attributes;
* ``copy_state_for_edit(state)``: an isolated copy of a state that shares its
  live handles (pydantic fields declared ``exclude=True``, values that cannot
  be deep-copied);
* ``encode_state``, ``decode_state``, ``deserialize_state_from_dict``,
  ``parse_in_memory_state``, ``InMemorySerializedState``: the incumbent's state
  payload codecs and model, refused with a ``ContextSerdeError`` that
  names anyflow's way (``ctx.to_dict()`` / ``Context.from_dict``).

See docs/state.md.
"""

from __future__ import annotations

from typing import Any

from ._dict_state import DictState as DictState
from ._state_copy import copy_state_for_edit as copy_state_for_edit
from .context._store import StateStore as StateStore
from .errors import ContextSerdeError

InMemoryStateStore = StateStore
"""llama-index-workflows' name for its in-memory store: anyflow has one store class."""


def _no_payload_format(name: str) -> ContextSerdeError:
    return ContextSerdeError(
        f"{name}() reads or writes llama-index-workflows' state payloads (a serializer, "
        "type names imported from the data), which anyflow does not have: save a run's "
        "state with handler.ctx.to_dict() and restore it with Context.from_dict(workflow, "
        "data), or read it with ctx.store.to_dict() (see docs/serialization.md)"
    )


def encode_state(state: Any, serializer: Any = None) -> Any:
    """Refused with ``ContextSerdeError``: see ``Context.to_dict``."""
    raise _no_payload_format("encode_state")


def decode_state(data: Any, serializer: Any = None) -> Any:
    """Refused with ``ContextSerdeError``: see ``Context.from_dict``."""
    raise _no_payload_format("decode_state")


def deserialize_state_from_dict(data: Any, serializer: Any = None, **kwargs: Any) -> Any:
    """Refused with ``ContextSerdeError``: see ``Context.from_dict``."""
    raise _no_payload_format("deserialize_state_from_dict")


def parse_in_memory_state(data: Any) -> Any:
    """Refused with ``ContextSerdeError``: see ``Context.from_dict``."""
    raise _no_payload_format("parse_in_memory_state")


class InMemorySerializedState:
    """Refused with ``ContextSerdeError``: the incumbent's state payload model."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _no_payload_format("InMemorySerializedState")


__all__ = [
    "DictState",
    "InMemorySerializedState",
    "InMemoryStateStore",
    "StateStore",
    "copy_state_for_edit",
    "decode_state",
    "deserialize_state_from_dict",
    "encode_state",
    "parse_in_memory_state",
]
