"""``Context``: one object whose face changes with the phase of the run.

* ``PreContext``: before ``wf.run()``; only the store can be prepared.
* ``ExternalContext``: the caller's view of a running (or finished) run
  (``handler.ctx``): send events in, read the store.
* ``InternalContext``: a step's view: send events, collect them, write to the
  stream, read its retry state.

Calling a method in a phase where it means nothing raises ``ContextStateError``
naming the phase and what to do instead, rather than doing something surprising.

The faces themselves are ``_faces``'s; how a context is saved and read back,
``_saved``'s; the context variable behind ``get_step_context()``,
``_step_context``'s; and the context a plain ``def`` step gets in its worker
thread, ``_thread_host``'s.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._core.state import RunStatus
from .._core.ticks import EventSent
from .._run_results import result_of
from ..decorators import check_timeout
from ..errors import (
    ContextStateError,
    NotInStepError,
    StateTypeError,
    WaitTimeoutError,
    WorkflowRuntimeError,
)
from ..events import Event
from ..retry import RetryInfo
from ._faces import ExternalContext as ExternalContext
from ._faces import Face
from ._faces import InternalContext as InternalContext
from ._faces import PreContext as PreContext
from ._pending import PendingWait, pending_waits
from ._saved import check_saved, read_run, read_store, save_context
from ._step_context import STEP_CONTEXT as STEP_CONTEXT
from ._store import StateStore, StateT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from .._core.state import RunState
    from ..runtime import ExternalRunAdapter
    from ..workflow import Workflow
    from .serializers import BaseSerializer

__all__ = ["Context", "ExternalContext", "InternalContext", "PreContext"]

EventT = TypeVar("EventT", bound=Event)


# llama-index-workflows' warnings, once per process each (code written for it
# resets them with ``cache_clear()``); ``anyflow.context.context`` names them.


@functools.lru_cache(maxsize=1)
def _warn_get_result() -> None:
    warnings.warn(
        "Context.get_result() is deprecated and will be removed in a future release. Prefer "
        "awaiting the WorkflowHandler returned by Workflow.run: "
        "`result = await workflow.run(..., ctx=ctx)`.",
        DeprecationWarning,
        stacklevel=3,
    )


@functools.lru_cache(maxsize=1)
def _warn_is_running_in_step() -> None:
    warnings.warn(
        "is_running called from within a step; the workflow is always running inside a "
        "step. This usage is deprecated.",
        DeprecationWarning,
        stacklevel=3,
    )


class Context(Generic[StateT]):
    """A run's context: its shared store, and the way steps and callers talk to it.

    Build one with ``Context(wf)`` only to prepare a run's store before
    ``wf.run(ctx=ctx)``, or to carry the store of a finished run into the next
    one; otherwise anyflow hands you the right one (``handler.ctx``, or a step's
    ``ctx`` parameter).
    """

    __slots__ = ("__weakref__", "_face", "_store", "_workflow")

    def __init__(self, workflow: Workflow) -> None:
        self._workflow = workflow
        conflict = type(workflow)._state_conflict
        if conflict is not None:
            raise StateTypeError(str(conflict))
        state_type = workflow.state_type
        self._store: StateStore[Any] = (
            StateStore(state_type()) if state_type is not None else StateStore()
        )
        self._face: Face = PreContext()

    @classmethod
    def _for_step(
        cls, workflow: Workflow, store: StateStore[Any], face: InternalContext
    ) -> Context[Any]:
        ctx: Context[Any] = cls.__new__(cls)
        ctx._workflow = workflow
        ctx._store = store
        ctx._face = face
        return ctx

    @staticmethod
    def get_step_context() -> Context[Any]:
        """The context of the step that is running in this task (or worker thread),
        for code called from a step that was not handed ``ctx``.

        :raises NotInStepError: outside a step (a ``ContextStateError`` and, as
            in llama-index-workflows, a ``WorkflowRuntimeError``).
        """
        ctx = STEP_CONTEXT.get(None)
        if ctx is None:
            raise NotInStepError(
                "Context.get_step_context() may only be called from within a step function "
                "(or code a running step calls, in its task or thread); elsewhere, pass the "
                "step's ctx along"
            )
        return ctx

    def _check_free(self) -> None:
        """Raise unless this context may start a run."""
        face = self._face
        if isinstance(face, ExternalContext) and face.adapter.outcome is None:
            raise ContextStateError(
                "Cannot start a new run while context is already running. Wait for completion "
                f"or use a new Context. This context belongs to run {face.adapter.run_id!r}, "
                "which is still running, and a context serves one run at a time"
            )
        if isinstance(face, InternalContext):
            raise ContextStateError("a step's context cannot start another run; use Context(wf)")

    def _attach(
        self, adapter: ExternalRunAdapter, snapshot: Callable[[], RunState] | None = None
    ) -> None:
        """Become the caller's context of the run behind ``adapter``."""
        self._check_free()
        self._face = ExternalContext(adapter, snapshot)

    def run_state(self) -> RunState | None:
        """The run's current state as its state machine holds it, seen from the
        caller's side (``handler.ctx``), where the runtime can tell it: None
        from a step's context, before the run starts, or on a runtime whose
        runs live elsewhere.

        An anyflow addition for tools built on the runtime (the server reads
        ``idle``, ``waiting`` and ``deadline`` to release a waiting run from
        memory); see ``anyflow.runtime.vocabulary.RunState``.
        """
        face = self._face
        if isinstance(face, ExternalContext) and face.snapshot is not None:
            return face.snapshot()
        return None

    _live_state = run_state  # the engine's own name for it

    def _saved_run(self) -> RunState | None:
        """The saved run this context resumes, if any (see ``from_dict``)."""
        face = self._face
        restored = face.restored if isinstance(face, PreContext) else None
        if restored is not None and restored.status is RunStatus.RUNNING:
            return restored
        return None

    def to_dict(self, serializer: BaseSerializer | None = None) -> dict[str, Any]:
        """The context as JSON-safe data: its store and, for a run that has not
        finished, the run itself, so that ``Context.from_dict`` can resume it in
        another process (see docs/serialization.md for what resuming re-runs).

        :param serializer: ``PickleSerializer()`` to pickle what JSON cannot hold
            (the default, ``JsonSerializer()``, refuses it).
        :raises ContextSerdeError: naming the JSON path of a value that is not
            JSON-safe (store plain data and events).
        """
        face = self._face
        state: RunState | None = None
        if isinstance(face, ExternalContext):
            if face.snapshot is None:
                raise ContextStateError(
                    "this run's runtime cannot tell its state, so the context cannot be saved"
                )
            state = face.snapshot()
        elif isinstance(face, PreContext):
            state = face.restored
        else:
            raise self._wrong_phase("to_dict", "Save the context from the caller: handler.ctx.")
        return save_context(self._workflow, self._store.to_dict(), state, serializer)

    @classmethod
    def from_dict(
        cls, workflow: Workflow, data: Any, serializer: BaseSerializer | None = None
    ) -> Context[Any]:
        """A context rebuilt from ``to_dict()`` data, to pass to ``workflow.run(ctx=...)``:
        the saved run resumes (or, for a saved finished run, a new run starts
        with the saved store).

        :param serializer: ``PickleSerializer()`` to read pickled values back
            (refused otherwise: pickle runs code as it loads).

        :raises ContextSerdeError: naming the JSON path of what is wrong (corrupt
            data, another format version or workflow, an unknown event type).
        """
        check_saved(workflow, data)
        ctx = cls(workflow)
        ctx._store = read_store(data, ctx._store.state_type, serializer)
        restored = read_run(data, workflow, serializer)
        if restored is not None:
            ctx._face = PreContext(restored)
        return ctx

    def _wrong_phase(self, fn: str, instead: str) -> ContextStateError:
        """The error for ``fn`` called in the wrong phase: llama-index-workflows'
        sentence for that phase first (code written for it matches on it), then
        which phase this is and what to do instead."""
        face = self._face
        if isinstance(face, PreContext):
            lead = (
                "send_event() called before workflow started. Call workflow.run() first."
                if fn == "send_event"
                else f"{fn} requires a running workflow. Call workflow.run() first."
            )
        elif isinstance(face, InternalContext):
            lead = f"{fn} is only available from handler code, not from within steps."
        else:
            lead = f"{fn} is only available from within step functions."
        return ContextStateError(
            f"{lead} Context.{fn}() cannot be used here: this context is {face.phase}. {instead}"
        )

    @property
    def store(self) -> StateStore[StateT]:
        """The run's state (usable in every phase): a dictionary, or an instance of
        the workflow's state class when its steps take ``ctx: Context[MyState]``."""
        return self._store

    def pending_waits(self) -> list[PendingWait]:
        """The waits the run's steps are suspended in now (``ctx.wait_for_event``),
        oldest first, each with what it takes and the question it published:
        answer a question with an event its wait takes (``wait.answers(ev)``).
        Empty before the run starts, once it ended, and where the runtime
        cannot tell the run's state."""
        state = self._live_state()
        if state is None or state.outcome is not None:
            return []
        return pending_waits(state)

    @property
    def is_running(self) -> bool:
        """Whether the run this context serves is going on (False before it starts).

        In a step it is always True, and asking warns (``DeprecationWarning``,
        once per process), as llama-index-workflows does.
        """
        face = self._face
        if isinstance(face, ExternalContext):
            return face.adapter.outcome is None
        if isinstance(face, InternalContext):
            _warn_is_running_in_step()
            return True
        return False

    def get_result(self) -> Any:
        """The finished run's result, as ``await handler`` gives it (the
        ``StopEvent``'s ``result``, or the stop event itself for a subclass;
        a failed run's exception is raised).

        llama-index-workflows' deprecated helper: it warns
        (``DeprecationWarning``, once per process), as there; await the handler
        instead.

        :raises ContextStateError: before the run starts, or in a step.
        :raises WorkflowRuntimeError: while the run goes on.
        """
        _warn_get_result()
        face = self._face
        if not isinstance(face, ExternalContext):
            raise self._wrong_phase(
                "get_result", "Await the run instead: result = await wf.run(..., ctx=ctx)."
            )
        adapter = face.adapter
        outcome = adapter.outcome
        if outcome is None:
            raise WorkflowRuntimeError(
                f"Workflow run with run_id {adapter.run_id} is not complete: await its "
                "handler for the result"
            )
        return result_of(outcome, adapter.run_id)

    def send_event(self, event: Event, step: str | None = None) -> None:
        """Send ``event`` into the run: to every step that accepts it, or to ``step``.

        A step's event is delivered when it is sent, whatever the step does
        next.  When a run resumes (its process died, or it was saved and
        restored) and an attempt that was executing runs again, the re-run does
        not deliver again what that attempt sent before: if it had sent *k*
        events, the re-run's first *k* calls are dropped and the calls after
        them are delivered.  The match is by position, so a step should send
        the same events in the same order when it runs again.  A retry after a
        failure is a new attempt (its ``idempotency_key()`` differs too): all
        it sends is delivered, including events the failed attempt sent.

        :raises WorkflowRuntimeError: if no step (or not ``step``) accepts it,
            or the run has finished.
        """
        face = self._face
        if isinstance(face, InternalContext):
            self._workflow._check_sendable(event, step, face.host.state)
            face.host.send_from_step(event, step, face.worker_id)
        elif isinstance(face, ExternalContext):
            self._workflow._check_sendable(event, step, self._live_state())
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
        return face.collect_events(event, expected, buffer_id)

    async def wait_for_event(
        self,
        event_type: type[EventT],
        waiter_event: Event | None = None,
        waiter_id: str | None = None,
        requirements: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> EventT:
        """Wait, inside a step, for an event of ``event_type`` sent into the run.

        ``waiter_event`` (typically an ``InputRequiredEvent``) is published to the
        stream once per waiter, to tell the caller what is wanted.  The first
        event of ``event_type`` (or a subclass) whose fields equal
        ``requirements`` is returned; while the step waits, the caller may send
        an event of any type it waits for, and a ``HumanResponseEvent`` sent
        before anyone waits for it is kept for a later waiter.  While it waits
        the step holds no worker slot; if the run ends meanwhile, the code after
        the wait does not run.

        A wait is remembered per delivery under ``waiter_id`` (by default its
        place among this attempt's waits: the first, the second, ...): when the
        step runs again on the same event (a retry, or a run resumed from a
        saved context), a wait that already got its event returns that event
        at once.  A retry does not publish a question again; a resumed run
        does, for the waits still unanswered, since its stream is a new one.
        Code before the first unanswered wait runs again on a resume (see
        docs/human-in-the-loop.md).

        :raises WaitTimeoutError: if no event came within ``timeout`` seconds.
        """
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase(
                "wait_for_event",
                "Call it from a @step method; from outside, answer with handler.send_event().",
            )
        if face.waiting:
            raise ContextStateError(
                f"step {face.step!r} is already waiting for an event: a step waits for one "
                "event at a time (await each wait_for_event before the next)"
            )
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"wait_for_event takes an Event subclass, not {event_type!r}")
        check_timeout(timeout)
        face.waits += 1
        key = waiter_id if waiter_id is not None else f"wait#{face.waits}"
        face.waiting = True
        try:
            event, timed_out = await face.host.wait(
                face.worker_id,
                face.step,
                key,
                (event_type,),
                tuple(sorted((requirements or {}).items())),
                waiter_event,
                timeout,
            )
        finally:
            face.waiting = False
        if timed_out:
            raise WaitTimeoutError(
                f"step {face.step!r} waited {timeout:g}s for a {event_type.__name__} "
                f"(waiter {key!r}) and none came; answer sooner, raise timeout=, or catch "
                "WaitTimeoutError in the step"
            )
        result: EventT = event
        return result

    async def running_steps(self) -> list[str]:
        """The names of the steps executing an event right now, sorted (a step
        waiting in ``wait_for_event`` or for a retry is not executing).

        :raises ContextStateError: before the run starts.
        """
        face = self._face
        if isinstance(face, PreContext):
            raise self._wrong_phase("running_steps", "Start the run first: handler = wf.run(...).")
        if isinstance(face, InternalContext):
            state: RunState | None = face.host.state
        else:
            state = self._live_state()
        return sorted({w.step for w in state.workers.values()}) if state is not None else []

    def stream_events(self, expose_internal: bool = False) -> AsyncIterator[Event]:
        """The run's published events, as ``handler.stream_events()`` gives them.

        :raises ContextStateError: before the run starts, or inside a step.
        """
        face = self._face
        if not isinstance(face, ExternalContext):
            raise self._wrong_phase(
                "stream_events", "Stream from the caller: handler.stream_events()."
            )
        return face.adapter.events(expose_internal=expose_internal)

    def retry_info(self) -> RetryInfo:
        """The current attempt's number, the previous attempt's exception and
        when it failed, and the seconds since the first attempt began (0.0 on
        the first attempt)."""
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase("retry_info", "Call it from a @step method.")
        elapsed = 0.0
        if face.attempt > 1 and face.started_at is not None:
            elapsed = max(0.0, face.host.now() - face.started_at)
        return RetryInfo(
            attempt=face.attempt,
            last_exception=face.last_error,
            elapsed_seconds=elapsed,
            last_failed_at=face.failed_at,
        )

    def idempotency_key(self, *, across_retries: bool = False) -> str:
        """A key naming this step attempt, to make a side effect happen once
        (pass it to a payment API, or record it with the effect and skip an
        effect already recorded).

        The key is the same when the attempt runs again because its run resumed
        after a crash (the attempt's result was not recorded), and differs for
        every other attempt.  With ``across_retries``, the retries of the same
        event to the same step share one key too, for an effect that must
        happen once however many attempts it takes.
        """
        face = self._face
        if not isinstance(face, InternalContext):
            raise self._wrong_phase("idempotency_key", "Call it from a @step method.")
        key = f"{getattr(face.host, 'run_id', '')}:{face.step}:{face.event_id}"
        return key if across_retries else f"{key}:{face.attempt}"

    @property
    def run_id(self) -> str | None:
        """The id of the run this context serves (None before it starts)."""
        face = self._face
        if isinstance(face, ExternalContext):
            return face.adapter.run_id
        if isinstance(face, InternalContext):
            return getattr(face.host, "run_id", None)
        return None
