"""``PendingWait``: what a run waits for from outside, read from its state.

A caller that answers questions (the ``anyflow`` command, a chat front end)
must send the event the suspended step waits for, not merely some event a
step accepts: the question a ``ctx.wait_for_event`` published is answered by
an event of that wait's types, with its ``requirements``.  A question a step
*returned* has no wait behind it; its answer starts the step that accepts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..events import Event

if TYPE_CHECKING:
    from .._core.state import RunState

__all__ = ["PendingWait", "pending_waits"]


@attrs.frozen
class PendingWait:
    """A step attempt suspended in ``ctx.wait_for_event``."""

    step: str
    """The waiting step."""
    waiter_id: str
    """The wait's ``waiter_id`` (``wait#N`` when the step gave none)."""
    event_types: tuple[type[Event], ...]
    """What the wait takes: an event of one of these types..."""
    requirements: Mapping[str, Any]
    """...whose fields have these values."""
    question: Event | None
    """The ``waiter_event`` the wait published (None if it gave none)."""
    deadline: float | None
    """When the wait times out, on the run's clock (None: no timeout)."""

    def answers(self, event: object) -> bool:
        """Whether ``event`` is what this wait takes."""
        return isinstance(event, self.event_types) and all(
            getattr(event, name, _ABSENT) == value for name, value in self.requirements.items()
        )


_ABSENT = object()


def pending_waits(state: RunState) -> list[PendingWait]:
    """The waits of ``state``, oldest first."""
    waits = []
    for waiter in state.waiting.values():
        memo = state.memos.get((waiter.step, waiter.delivery.event_id))
        question = None if memo is None else memo.published.get(waiter.waiter_id)
        waits.append(
            PendingWait(
                step=waiter.step,
                waiter_id=waiter.waiter_id,
                event_types=waiter.event_types,
                requirements=dict(waiter.requirements),
                question=question,
                deadline=waiter.deadline,
            )
        )
    return waits
