"""A step's context for a plain ``def`` step, which runs in a worker thread.

The run's state belongs to the event loop's thread, so the context a thread
gets has a host (``_ThreadHost``) that carries every call into the run back
to the loop (``anyio.from_thread``) and waits for it there; ``thread_safe``
gives a ``def`` step that context instead of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.from_thread

from ..errors import WorkflowRuntimeError
from ._context import Context
from ._faces import InternalContext

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._core.state import RunState
    from ..events import Event
    from ._faces import StepHost

__all__ = ["thread_safe"]


class _ThreadHost:
    """The driver, as a plain ``def`` step running in a worker thread sees it.

    The run's state is the event loop's, so every call that changes it is
    carried back to the loop's thread and waited for there.
    """

    __slots__ = ("_host",)

    def __init__(self, host: StepHost) -> None:
        self._host = host

    @property
    def state(self) -> RunState:
        return anyio.from_thread.run_sync(lambda: self._host.state)

    @property
    def run_id(self) -> str | None:
        return getattr(self._host, "run_id", None)

    def now(self) -> float:
        return anyio.from_thread.run_sync(self._host.now)

    def send_from_step(self, event: Event, step: str | None, worker_id: int) -> None:
        anyio.from_thread.run_sync(self._host.send_from_step, event, step, worker_id)

    def collect(
        self, worker_id: int, buffer_id: str, event: Event, expected: Sequence[type[Event]]
    ) -> list[Event] | None:
        return anyio.from_thread.run_sync(self._host.collect, worker_id, buffer_id, event, expected)

    def publish(self, event: Event) -> None:
        anyio.from_thread.run_sync(self._host.publish, event)

    async def wait(self, *args: Any) -> tuple[Any, bool]:
        raise WorkflowRuntimeError(
            "wait_for_event needs an `async def` step: a plain `def` step runs in a worker "
            "thread, which cannot await"
        )


def thread_safe(value: Any) -> Any:
    """``value``, or, for a step's context, one that a worker thread may use (see
    ``_ThreadHost``); anything else is passed to a ``def`` step as it is."""
    if isinstance(value, Context) and isinstance(value._face, InternalContext):
        face = value._face
        ctx = Context._for_step(
            value._workflow,
            value._store,
            InternalContext(
                _ThreadHost(face.host),
                face.worker_id,
                face.step,
                face.attempt,
                face.last_error,
                face.event_id,
                started_at=face.started_at,
                failed_at=face.failed_at,
            ),
        )
        return ctx
    return value
