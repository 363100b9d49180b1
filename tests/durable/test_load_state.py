"""``anyflow.durable.journal.load_state``: a run's recorded snapshot goes back
into its state store through the store's public ``restore``."""

from __future__ import annotations

import attrs
import pytest

from anyflow.durable.journal import load_state
from anyflow.errors import DurabilityError
from anyflow.state_store import StateStore

pytestmark = pytest.mark.anyio


@attrs.define
class Basket:
    apples: int = 0


async def test_a_snapshot_is_restored_without_counting_a_change() -> None:
    store = StateStore(Basket())
    load_state(store, {"apples": 4}, "run-1")
    assert store.version == 0  # so the journal does not write it again
    assert await store.get("apples") == 4

    untyped = StateStore()
    load_state(untyped, {"pears": 2}, "run-2")
    assert untyped.version == 0
    assert await untyped.get("pears") == 2


def test_a_snapshot_that_does_not_fit_names_the_run() -> None:
    with pytest.raises(DurabilityError, match="the state snapshot of run 'run-3' is unreadable"):
        load_state(StateStore(Basket()), {"apples": "many"}, "run-3")
    with pytest.raises(DurabilityError, match="the state snapshot of run 'run-4' is unreadable"):
        load_state(StateStore(), ["not", "a", "dict"], "run-4")
