"""The last events of finished runs the server keeps: bounded, oldest out first."""

from __future__ import annotations

from anyflow.events import StopEvent
from anyflow.server._handler_views import TerminalEvents


def test_the_oldest_run_goes_first_once_keep_runs_are_kept() -> None:
    # No catalog: it is read only for a run not kept, and none is asked for.
    kept = TerminalEvents(None, keep=3)  # type: ignore[arg-type]
    for i in range(5):
        kept.remember(f"r{i}", StopEvent(result=i) if i % 2 else None)
    assert [f"r{i}" in kept for i in range(5)] == [False, False, True, True, True]
    kept.forget("r3")
    kept.remember("r5", None)
    assert [f"r{i}" in kept for i in range(6)] == [False, False, True, False, True, True]
