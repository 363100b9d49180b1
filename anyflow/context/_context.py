"""``Context``: one object whose face changes with the phase of the run.

* ``PreContext``: before ``wf.run()``; only the store can be prepared.
* ``ExternalContext``: the caller's view of a running (or finished) run
  (``handler.ctx``): send events in, read the store.
* ``InternalContext``: a step's view: send events, collect them, write to the
  stream, read its retry state.

Calling a method in a phase where it means nothing raises ``ContextStateError``
naming the phase and what to do instead, rather than doing something surprising.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .._core.ticks import EventSent
from ..errors import ContextStateError
from ..events import Event
from ..retry import RetryInfo
from ._store import StateStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..runtime import ExternalRunAdapter
    from ..workflow import Workflow

__all__ = ["Context", "ExternalContext", "InternalContext", "PreContext"]

StateT = TypeVar("StateT")


class StepHost(Protocol):
    """What a step's context needs from the driver running it."""

    def send_from_step(self, event: Event, step: str | None) -> None: ...
    def collect(
        self, worker_id: int, buffer_id: str, event: Event, expected: Sequence[type[Event]]
    ) -> list[Event] | None: ...
    def publish(self, event: Event) -> None: ...


class PreContext:
    phase = "not started (it has not been passed to wf.run() yet)"


class ExternalContext:
    phase = "the caller's view of a run"
    __slots__ = ("adapter",)

    def __init__(self, adapter: ExternalRunAdapter) -> None:
        self.adapter = adapter


class InternalContext:
    phase = "inside a step"
    __slots__ = ("attempt", "host", "last_error", "step", "worker_id")

    def __init__(
        self, host: StepHost, worker_id: int, step: str, attempt: int, last_error: Any
    ) -> None:
        self.host = host
        self.worker_id = worker_id
        self.step = step
        self.attempt = attempt
        self.last_error = last_error


Face = PreContext | ExternalContext | InternalContext


class Context(Generic[StateT]):
    """A run's context: its shared store, and the way steps and callers talk to it.

    Build one with ``Context(wf)`` only to prepare a run's store before
    ``wf.run(ctx=ctx)``, or to carry the store of a finished run into the next
    one; otherwise anyflow hands you the right one (``handler.ctx``, or a step's
    ``ctx`` parameter).
    """

    __slots__ = ("_face", "_store", "_workflow")

    def __init__(self, workflow: Workflow) -> None:
        self._workflow = workflow
        self._store = StateStore()
        self._face: Face = PreContext()

    @classmethod
    def _for_step(
        cls, workflow: Workflow, store: StateStore, face: InternalContext
    ) -> Context[Any]:
        ctx: Context[Any] = cls.__new__(cls)
        ctx._workflow = workflow
        ctx._store = store
        ctx._face = face
        return ctx

    def _check_free(self) -> None:
        """Raise unless this context may start a run."""
        face = self._face
        if isinstance(face, ExternalContext) and face.adapter.outcome is None:
            raise ContextStateError(
                f"this context belongs to run {face.adapter.run_id!r}, which is still running: "
                "a context serves one run at a time; wait for it to finish or build a new Context"
            )
        if isinstance(face, InternalContext):
            raise ContextStateError("a step's context cannot start another run; use Context(wf)")

    def _attach(self, adapter: ExternalRunAdapter) -> None:
        """Become the caller's context of the run behind ``adapter``."""
        self._check_free()
        self._face = ExternalContext(adapter)

    def _wrong_phase(self, fn: str, instead: str) -> ContextStateError:
        return ContextStateError(
            f"Context.{fn}() cannot be used here: this context is {self._face.phase}. {instead}"
        )

    @property
    def store(self) -> StateStore:
        """The run's key-value state (usable in every phase)."""
        return self._store

    @property
    def is_running(self) -> bool:
        face = self._face
        if isinstance(face, ExternalContext):
            return face.adapter.outcome is None
        return isinstance(face, InternalContext)

    def send_event(self, event: Event, step: str | None = None) -> None:
        """Send ``event`` into the run: to every step that accepts it, or to ``step``.

        :raises WorkflowRuntimeError: if no step (or not ``step``) accepts it,
            or the run has finished.
        """
        face = self._face
        if isinstance(face, InternalContext):
            self._workflow._check_sendable(event, step)
            face.host.send_from_step(event, step)
        elif isinstance(face, ExternalContext):
            self._workflow._check_sendable(event, step)
            face.adapter.send_tick(EventSent(event, step, external=True))
        else:
            raise self._wrong_phase(
                "send_event", "Start the run first: handler = wf.run(...); handler.send_event(ev)."
            )

    def write_event_to_stream(self, event: Event) -> None:
        """Publish ``event`` to the caller's ``handler.stream_events()``."""
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase(
                "write_event_to_stream", "Only steps write to the stream; call it from a @step."
            )
        if not isinstance(event, Event):
            raise TypeError(f"write_event_to_stream takes an Event, not {type(event).__name__}")
        face.host.publish(event)

    def collect_events(
        self, event: Event, expected: Sequence[type[Event]], buffer_id: str | None = None
    ) -> list[Event] | None:
        """Put ``event`` aside until one event of each ``expected`` type is there.

        Returns None until the set is complete, then the events in the order of
        ``expected`` (types match exactly; the oldest buffered event of a type
        is taken first).  Events beyond the set stay buffered for the next one.
        The buffer belongs to the calling step; ``buffer_id`` separates several
        collections in one step.
        """
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase("collect_events", "Call it from a @step method.")
        return face.host.collect(face.worker_id, buffer_id or "default", event, expected)

    def retry_info(self) -> RetryInfo:
        """The current attempt's number and the previous attempt's exception."""
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase("retry_info", "Call it from a @step method.")
        return RetryInfo(attempt=face.attempt, last_exception=face.last_error)

    @property
    def run_id(self) -> str | None:
        """The id of the run this context serves (None before it starts)."""
        face = self._face
        if isinstance(face, ExternalContext):
            return face.adapter.run_id
        if isinstance(face, InternalContext):
            return getattr(face.host, "run_id", None)
        return None
