"""Timer ids are made and read in one place (``_core.timers``), and read back
as what they were made for; ids the reducer does not make are not read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyflow._core.state import RUN_TIMEOUT_TIMER
from anyflow._core.timers import Timer, timer_id, timer_of

NUMBERED = [kind for kind in Timer if kind is not Timer.RUN_TIMEOUT]


@given(st.sampled_from(NUMBERED), st.integers(0, 10**9))
def test_a_timer_id_reads_back_as_what_it_was_made_for(kind: Timer, number: int) -> None:
    assert timer_of(timer_id(kind, number)) == (kind, number)


def test_the_ids_are_spelled_as_journals_hold_them() -> None:
    assert [timer_id(kind, 3) for kind in NUMBERED] == ["retry-3", "saved-3", "wait-3", "step-3"]
    assert timer_of(RUN_TIMEOUT_TIMER) == (Timer.RUN_TIMEOUT, None)
    assert RUN_TIMEOUT_TIMER == "run-timeout"


@pytest.mark.parametrize(
    "text", ["", "x", "retry-", "retry-a", "retry--1", "wait-\u0663", "run-timeout-1", "Step-1"]
)
def test_an_id_the_reducer_does_not_make_is_not_read(text: str) -> None:
    assert timer_of(text) is None
