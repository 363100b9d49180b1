"""``WorkflowTestRunner``: run a workflow once and keep everything it did."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import WorkflowCancelledByUser
from ..events import Event, InternalEvent, StepStateChanged, WorkflowIdleEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..events import StartEvent
    from ..workflow import Workflow

__all__ = ["TestRunResult", "WorkflowTestRunner"]


@attrs.frozen
class TestRunResult:
    """What one run did."""

    __test__ = False  # not a pytest test class

    result: Any
    """The run's result (None if it did not complete)."""
    exception: BaseException | None
    """What the run ended with, if it did not complete."""
    events: tuple[Event, ...]
    """The published events, the last one included (with the internal ones if
    the runner was asked for them)."""
    calls: dict[str, int]
    """Step attempts started, by step."""
    stuck: bool
    """The run waited for an event and ``send`` had none left: it was cancelled."""


class WorkflowTestRunner:
    """Runs ``workflow`` and records its events, its result and its step calls.

    ``await WorkflowTestRunner(wf).run(topic="owls", send=[HumanResponseEvent(...)])``

    :param expose_internal: also keep ``InternalEvent``s (step state changes,
        idleness) in ``events``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, workflow: Workflow, *, expose_internal: bool = False) -> None:
        self.workflow = workflow
        self.expose_internal = expose_internal

    async def run(
        self,
        start_event: StartEvent | None = None,
        *,
        send: Sequence[Event] = (),
        **fields: Any,
    ) -> TestRunResult:
        """Run to the end.  The events of ``send`` go in one at a time, each
        when the run is idle (every unfinished step waits for an event); a run
        that is idle with nothing left to send is cancelled (``stuck``)."""
        pending = list(send)
        events: list[Event] = []
        calls: Counter[str] = Counter()
        stuck = False
        async with self.workflow.run(start_event, **fields) as handler:
            async for event in handler.stream_events(expose_internal=True):
                if isinstance(event, StepStateChanged) and event.step_state == "running":
                    calls[event.name] += 1
                if self.expose_internal or not isinstance(event, InternalEvent):
                    events.append(event)
                if isinstance(event, WorkflowIdleEvent):
                    if pending:
                        await handler.send_event(pending.pop(0))
                    else:
                        stuck = True
                        await handler.cancel_run()
            exception = handler.exception()
            result = handler.result() if exception is None else None
        if stuck:
            assert isinstance(exception, WorkflowCancelledByUser)
        return TestRunResult(result, exception, tuple(events), dict(calls), stuck)
