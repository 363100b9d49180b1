"""``anyflow.state_store`` under llama-index-workflows' path for it
(``workflows.context.state_store``)."""

from __future__ import annotations

from ..state_store import DictState as DictState
from ..state_store import InMemoryStateStore as InMemoryStateStore
from ..state_store import StateStore as StateStore
from ..state_store import copy_state_for_edit as copy_state_for_edit

__all__ = ["DictState", "InMemoryStateStore", "StateStore", "copy_state_for_edit"]
