"""The ``chain`` workload of ``incumbent_impl`` for llama-agents-dbos's runtime.

A copy of ``incumbent_impl.ChainFlow``, in a module of its own because
``python -m benchmarks dbos`` runs it in another venv (llama-agents-dbos needs
dbos 2.x; anyflow's venv has dbos 3), where ``incumbent_impl``'s imports of the
benchmark helpers are not installed; and at module level, because the
incumbent's DBOS runtime pickles the run's events and configuration, which
pickle cannot do for classes defined in a function.
"""

from __future__ import annotations

from workflows import Workflow, step
from workflows.events import Event, StartEvent, StopEvent

__all__ = ["ChainFlow", "Hop"]


class Hop(Event):
    i: int
    n: int


class ChainFlow(Workflow):
    """One step that returns the next event to itself: the cost of one hop."""

    @step
    async def hop(self, ev: StartEvent | Hop) -> Hop | StopEvent:
        if isinstance(ev, StartEvent):
            return Hop(i=1, n=ev.n)
        if ev.i >= ev.n:
            return StopEvent(result=ev.i)
        return Hop(i=ev.i + 1, n=ev.n)
