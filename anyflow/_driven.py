"""The machinery of a run driven by its callers (``handler.py``'s rule 3).

A run that no runtime hosts runs only while a caller waits on it, and a
streaming caller pauses it whenever it comes to rest with events to hand
over. ``Driven`` is the adapter decorator that makes such a pause look like
nothing happened (what the stopped driver reports as the run's end is
dropped, and the next drive resumes from the paused state); ``RunView`` is
what the run's context and that adapter read of the handler's run, kept
apart from the handler so that they hold no reference to it and a dropped
handler is freed at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ._core.state import Delivery, RunState
from ._core.ticks import EventSent
from .runtime import InternalRunAdapter, InternalRunAdapterDecorator, Recovery

if TYPE_CHECKING:
    import contextlib

    from ._core.state import Outcome
    from ._core.ticks import Tick
    from .context import StateStore
    from .events import Event
    from .runtime import ExternalRunAdapter
    from .runtime._driver import Driver
    from .workflow import Workflow

__all__ = ["Driven", "RunView", "at_rest"]


class Driven(InternalRunAdapterDecorator):
    """The driver's adapter of a run driven by its callers (rule 3).

    Each drive runs in a cancel scope of its own.  A streaming drive pauses
    when the driver would wait for ticks while nothing of the run is at work
    (no step executing or queued, no retry pending) and the stream has events
    to hand over: the scope is cancelled, and what the stopped driver would
    report as the run's end (its last event, its outcome) is dropped, so the
    run stays open.  The next drive resumes from the paused state as a
    recovered run (same clock, same stream: questions already asked are not
    asked again).  A streaming drive routes every tick through
    ``receive_ticks`` (``observes_ticks``), so that it sees each such moment.
    So does a drive that resumes a pause in which steps waited: the caller's
    events sent meanwhile are held until those steps wait again (their
    attempts run again from their start), so that an answer reaches every
    wait it matches, as it would have in a run never paused.
    """

    __slots__ = ("held", "pause_when_idle", "paused", "rewaits", "scope", "view")

    def __init__(
        self,
        inner: InternalRunAdapter,
        view: RunView,
    ) -> None:
        super().__init__(inner)
        self.view = view
        self.scope: anyio.CancelScope | None = None  # each drive's, made by run_scope
        self.pause_when_idle = False
        self.paused = False
        # A resumed pause: the deliveries that were waiting when it paused
        # (their steps run again to their wait), and the caller's events held
        # until they wait again (see receive_ticks).
        self.rewaits: set[tuple[str, int]] = set()
        self.held: list[Tick] = []

    @property
    def observes_ticks(self) -> bool:
        # A drive that resumes a pause in which steps waited sees every tick
        # too: it holds the caller's events until those steps wait again.
        resume_from = self.view.resume_from
        return (
            self.pause_when_idle
            or self.inner.observes_ticks
            or (resume_from is not None and bool(resume_from.waiting))
        )

    def run_scope(self) -> contextlib.AbstractContextManager[object]:
        self.scope = anyio.CancelScope()
        return self.scope

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        view = self.view
        state, view.resume_from = view.resume_from, None
        if state is not None:
            self.rewaits = {(w.step, w.delivery.event_id) for w in state.waiting.values()}
            return Recovery(state=state)
        return await self.inner.recover(workflow, start_event, store)

    def _rewaiting(self) -> bool:
        """Whether a step that waited when the run paused is still on its way
        back to its wait (its attempt runs again from its start)."""
        if not self.rewaits:
            return False
        state = self.view.live_state()
        waiting = {(w.step, w.delivery.event_id) for w in state.waiting.values()}
        busy = {(w.step, w.delivery.event_id) for w in state.workers.values()}
        for name, lane in state.lanes.items():
            for item in lane.queue:
                delivery = item if isinstance(item, Delivery) else item.delivery
                busy.add((name, delivery.event_id))
        self.rewaits = {key for key in self.rewaits - waiting if key in busy}
        return bool(self.rewaits)

    async def receive_ticks(self) -> list[Tick]:
        # The caller's events sent while the run was paused wait until the
        # steps that waited then wait again: an answer goes to every wait it
        # matches, and a wait that is not back yet would miss it.
        if self.held and not self._rewaiting():
            held, self.held = self.held, []
            return held
        if (
            self.pause_when_idle
            and not self.paused
            and at_rest(self.view.live_state())
            and self.view.has_events()
        ):
            self.paused = True
            assert self.scope is not None  # the driver entered run_scope() first
            self.scope.cancel()
        ticks = await self.inner.receive_ticks()
        if self.rewaits and self._rewaiting():
            sent = [t for t in ticks if type(t) is EventSent and t.external]
            if sent:
                self.held += sent
                ticks = [t for t in ticks if not (type(t) is EventSent and t.external)]
        return ticks

    def post_tick(self, tick: Tick) -> None:
        # What the stopping driver's tasks report (a wait given up) is not a
        # fact of the run: the resumed run starts those attempts over.
        if not self.paused:
            self.inner.post_tick(tick)

    def publish(self, event: Any) -> None:
        if not self.paused:  # the paused driver's "last event" is not the run's
            self.inner.publish(event)

    async def on_end(self, outcome: Outcome, final: bool) -> None:
        if not self.paused:
            await self.inner.on_end(outcome, final)

    def finish(self, outcome: Outcome) -> None:
        if not self.paused:
            self.inner.finish(outcome)


def at_rest(state: RunState) -> bool:
    """Nothing of the run is at work: only input from outside (or a timer)
    can move it on."""
    return (
        state.outcome is None
        and not state.workers
        and not state.retries
        and not any(lane.queue for lane in state.lanes.values())
    )


class RunView:
    """What the run's context and its driven adapter read of a handler's run
    (kept apart from the handler so that they hold no reference to it, and a
    dropped handler is freed at once)."""

    __slots__ = ("adapter", "driver", "expose_internal", "resume_from", "saved", "workflow")

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.adapter: ExternalRunAdapter | None = None
        self.resume_from: RunState | None = None
        self.driver: Driver | None = None
        self.saved: RunState | None = None
        self.expose_internal = False

    def live_state(self) -> RunState:
        """The run's reducer state now (paused, running, or not yet started)."""
        if self.resume_from is not None:
            return self.resume_from
        if self.driver is not None:
            return self.driver.state
        if self.saved is not None:
            return self.saved
        return RunState.initial(self.workflow._spec)

    __call__ = live_state

    def has_events(self) -> bool:
        """Whether the stream has an event to hand over."""
        ready = getattr(self.adapter, "ready", None)
        return ready is not None and bool(ready(self.expose_internal))
