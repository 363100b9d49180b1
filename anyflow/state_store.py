"""The run's state store, under the name of llama-index-workflows' module
(``workflows.context.state_store``; ``anyflow.context.state_store`` is the same).

* ``StateStore``: what ``ctx.store`` is; ``InMemoryStateStore`` is the same
  class under the incumbent's name for its default store;
* ``DictState``: the untyped state, a dictionary whose keys read as attributes.

See docs/state.md.
"""

from __future__ import annotations

from ._dict_state import DictState as DictState
from .context._store import StateStore as StateStore

InMemoryStateStore = StateStore
"""llama-index-workflows' name for its in-memory store: anyflow has one store class."""

__all__ = ["DictState", "InMemoryStateStore", "StateStore"]
