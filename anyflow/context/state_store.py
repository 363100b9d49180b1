"""``anyflow.state_store`` under llama-index-workflows' path for it
(``workflows.context.state_store``)."""

from __future__ import annotations

from ..state_store import DictState as DictState
from ..state_store import InMemorySerializedState as InMemorySerializedState
from ..state_store import InMemoryStateStore as InMemoryStateStore
from ..state_store import StateStore as StateStore
from ..state_store import copy_state_for_edit as copy_state_for_edit
from ..state_store import decode_state as decode_state
from ..state_store import deserialize_state_from_dict as deserialize_state_from_dict
from ..state_store import encode_state as encode_state
from ..state_store import parse_in_memory_state as parse_in_memory_state

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
