"""The run's state store, under the name of llama-index-workflows' module
(``workflows.context.state_store``; ``anyflow.context.state_store`` is the same).

* ``StateStore``: what ``ctx.store`` is; ``InMemoryStateStore`` is the same
  class under the incumbent's name for its default store;
* ``DictState``: the untyped state, a dictionary whose keys read as attributes;
* ``copy_state_for_edit(state)``: an isolated copy of a state that shares its
  live handles (pydantic fields declared ``exclude=True``, values that cannot
  be deep-copied).

See docs/state.md.
"""

from __future__ import annotations

from ._dict_state import DictState as DictState
from ._state_copy import copy_state_for_edit as copy_state_for_edit
from .context._store import StateStore as StateStore

InMemoryStateStore = StateStore
"""llama-index-workflows' name for its in-memory store: anyflow has one store class."""

__all__ = ["DictState", "InMemoryStateStore", "StateStore", "copy_state_for_edit"]
