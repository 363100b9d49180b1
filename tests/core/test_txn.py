"""The reducer's transaction builds each next state from every field of the
last one, in RunState's field order (positionally, for speed)."""

from __future__ import annotations

import attrs

from anyflow._core.reducer import _Txn
from anyflow._core.state import RunSpec, RunState


class _Marker:
    """A value of one field only: a field given another field's value shows."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def test_a_transaction_that_changes_nothing_gives_back_every_field_in_its_place() -> None:
    spec = RunSpec(steps={}, stop_types=())
    fields = [f.name for f in attrs.fields(RunState)]
    # Every field but spec gets a marker; status is read by done() to decide
    # whether to update idle, so it gets a value done() leaves alone.
    marked = {name: _Marker(name) for name in fields if name not in ("spec", "status")}
    state = RunState(spec, **marked)  # type: ignore[arg-type]
    after, commands = _Txn(state, 0.0).done()
    assert commands == []
    for name in fields:
        assert getattr(after, name) is getattr(state, name), name
