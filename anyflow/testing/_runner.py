"""``WorkflowTestRunner``: run a workflow once and keep everything it did.

The API is llama-index-workflows' (``workflows.testing``): ``run(start_event,
ctx, expose_internal, exclude_events)`` returns a ``WorkflowTestResult`` with
``collected``, ``event_types``, ``result`` and ``ctx``, and a run that fails
raises its error.  anyflow adds answers for a run that asks (``send``), the step
attempts (``calls``), a run that would wait forever (``stuck``) and the choice
to keep a failure instead of raising it (``raise_on_error=False``).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs

from ..context import Context
from ..errors import WorkflowCancelledByUser
from ..events import Event, InternalEvent, StepStateChanged, WorkflowIdleEvent

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ..events import StartEvent
    from ..workflow import Workflow

__all__ = ["TestRunResult", "WorkflowTestResult", "WorkflowTestRunner"]


@attrs.frozen
class WorkflowTestResult:
    """What one run did."""

    __test__ = False  # not a pytest test class

    collected: list[Event]
    """The published events, in order, the last one (a ``StopEvent``) included;
    the internal ones too unless ``expose_internal=False``; none of the classes
    in ``exclude_events``."""
    event_types: dict[type[Event], int]
    """How many events of each class ``collected`` holds."""
    result: Any
    """The run's result (None if it did not complete)."""
    ctx: Context[Any]
    """The run's context: read its ``store`` after the run."""
    exception: BaseException | None = None
    """What the run ended with if it did not complete (only seen with
    ``raise_on_error=False``: otherwise it is raised)."""
    calls: dict[str, int] = attrs.field(factory=dict)
    """Step attempts started, by step."""
    stuck: bool = False
    """The run waited for an event and ``send`` had none left: it was cancelled."""

    @property
    def events(self) -> tuple[Event, ...]:
        """``collected``, as a tuple."""
        return tuple(self.collected)


TestRunResult = WorkflowTestResult
"""The name this class had before it took the incumbent's."""


class WorkflowTestRunner:
    """Runs ``workflow`` and records its events, its result and its step calls.

    ``await WorkflowTestRunner(wf).run(StartEvent(topic="owls"))``, or with the
    start event's fields, and the answers to the questions the run will ask:
    ``await WorkflowTestRunner(wf).run(topic="owls", send=[HumanResponseEvent(...)])``.

    :param expose_internal: the default of ``run(expose_internal=...)``: whether
        ``collected`` keeps ``InternalEvent``s (step state changes, idleness).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, workflow: Workflow, *, expose_internal: bool = True) -> None:
        self.workflow = workflow
        self.expose_internal = expose_internal

    async def run(
        self,
        start_event: StartEvent | None = None,
        ctx: Context[Any] | None = None,
        expose_internal: bool | None = None,
        exclude_events: Iterable[type[Event]] | None = None,
        *,
        send: Sequence[Event] = (),
        raise_on_error: bool = True,
        **fields: Any,
    ) -> WorkflowTestResult:
        """Run to the end and return what the run did.

        :param start_event: the start event; or leave it out and pass its
            ``fields`` as keywords.
        :param ctx: a context to run in (a saved run's, to resume it).
        :param expose_internal: keep internal events in ``collected`` (default:
            the runner's ``expose_internal``, True unless set otherwise).
        :param exclude_events: event classes (exactly these, not their
            subclasses) to leave out of ``collected``.
        :param send: events that go in one at a time, each when the run is idle
            (every unfinished step waits for an event).  A run that is idle with
            nothing left to send is cancelled and marked ``stuck``, instead of
            hanging the test.
        :param raise_on_error: raise what the run ended with if it did not
            complete (its step's exception, a timeout, or, for a stuck run,
            ``WorkflowCancelledByUser`` with a note saying why); with False,
            return it in ``exception``.
        """
        keep_internal = self.expose_internal if expose_internal is None else expose_internal
        excluded = tuple(exclude_events or ())
        pending = list(send)
        collected: list[Event] = []
        calls: Counter[str] = Counter()
        stuck = False
        async with self.workflow.run(start_event, ctx=ctx, **fields) as handler:
            async for event in handler.stream_events(expose_internal=True):
                if isinstance(event, StepStateChanged) and event.step_state == "running":
                    calls[event.name] += 1
                internal = isinstance(event, InternalEvent)
                if (keep_internal or not internal) and type(event) not in excluded:
                    collected.append(event)
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
            _note(
                exception,
                "WorkflowTestRunner cancelled the run: it waited for an event and send= "
                f"had no more ({len(send)} sent); pass the answers in run(send=[...])",
            )
        if exception is not None and raise_on_error:
            raise exception
        return WorkflowTestResult(
            collected=collected,
            event_types=dict(Counter(type(e) for e in collected)),
            result=result,
            ctx=handler.ctx,
            exception=exception,
            calls=dict(calls),
            stuck=stuck,
        )


def _note(error: BaseException, text: str) -> None:
    """``error.add_note(text)``, on Python 3.10 too."""
    notes = getattr(error, "__notes__", None)
    if notes is None:
        error.__notes__ = notes = []  # type: ignore[attr-defined]
    notes.append(text)
