"""Hypothesis strategies for simulated runs of your workflows.

    from hypothesis import given
    from anyflow.testing import simulate
    from anyflow.testing.strategies import faults, schedules

    @given(schedule=schedules(), faults=faults(max=2))
    async def test_the_total_never_changes(schedule, faults): ...

A schedule is a list of choices that shrinks toward "the steps in the order
they were started", so a failing example shrinks to the fewest reorderings
that still break your invariant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import strategies as st

from ._simulate import Fault, Schedule

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["faults", "schedules"]


def schedules(*, max_choices: int = 200) -> st.SearchStrategy[Schedule]:
    """Schedules for ``simulate(..., schedule=...)``: up to ``max_choices``
    decisions (later ones take the first option)."""
    return st.lists(st.integers(0, 255), max_size=max_choices).map(
        lambda choices: Schedule(tuple(choices))
    )


def faults(
    *,
    max: int = 2,
    steps: Sequence[str] | None = None,
    kinds: Sequence[str] = ("error", "timeout"),
    max_nth: int = 8,
) -> st.SearchStrategy[tuple[Fault, ...]]:
    """Up to ``max`` faults, each making one step attempt fail: of one of
    ``steps`` (any step if None), the ``nth`` attempt started (0 to
    ``max_nth``), failing as one of ``kinds`` (see ``Fault``)."""
    step = st.none() if steps is None else st.sampled_from(list(steps))
    fault = st.builds(
        Fault,
        kind=st.sampled_from(list(kinds)),
        step=step,
        nth=st.integers(0, max_nth),
    )
    return st.lists(fault, max_size=max).map(tuple)
