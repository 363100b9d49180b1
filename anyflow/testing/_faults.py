"""The faults a simulation injects, and the fault sites inside steps where
some of them happen: ``fault_point(name)`` calls, and calls to the methods of
a step's resources.

A fault at a site is planned as ``Fault(kind, step, nth, at=...)`` or
``Fault(kind, step, nth, call=...)`` and happens the ``nth`` time a step (or
``step``) reaches that site.  ``FaultSites`` counts the sites reached and
hands out the fault planned for each.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Fault", "FaultSites", "InjectedFault"]


class InjectedFault(Exception):
    """Raised in a step attempt by a simulated fault."""


class Halted(BaseException):
    """Raised from a plain (not async) resource call whose process crashes, or
    whose run is cancelled, there: it unwinds the step's code to its attempt,
    which then waits to be dropped (a crash) or cancelled, like an attempt
    that stopped at an ``await``.  A ``BaseException``, so the step's
    ``except Exception`` does not take it for a failure of the call."""


def _check(fault: Fault, attribute: attrs.Attribute[str | None], call: str | None) -> None:
    if call is None:
        return
    if fault.at is not None:
        raise ValueError(
            f"Fault({fault.kind!r}, at={fault.at!r}, call={call!r}): a fault happens at one "
            "site, a fault point (at=) or a resource call (call=); give one of them"
        )
    if not call or call.startswith(".") or call.endswith("."):
        raise ValueError(
            f"Fault({fault.kind!r}, call={call!r}): name the call as the step's parameter "
            "and the method, e.g. call='bank.charge' (or call='notify' for a resource that "
            "is itself called)"
        )


@attrs.frozen
class Fault:
    """Make one step attempt fail.

    :ivar kind: ``"error"``: the attempt raises ``InjectedFault`` before its
        step function runs.  ``"timeout"``: the step function runs to its end
        (its side effects happen), then the attempt fails with
        ``StepTimeoutError``, as if it had answered too late.
        ``"cancel"``: the caller cancels the run as the attempt starts (the
        attempt's code does not run; every step's cleanup does).
        ``"crash"``: the process dies right after the ``nth`` batch of ticks
        is recorded, before anything it caused is done; the run is then
        resumed from its journal (a durable run on a ``MemoryStore``; the
        workflow object, standing for the world outside, survives).
    :ivar step: the step whose attempt fails; None for any step (always
        None for a crash between batches).
    :ivar nth: which attempt, counting from 0 the attempts started (of
        ``step``, or of all steps); for a crash, which recorded batch; with
        ``at`` or ``call``, which time the site is reached (by ``step``, or
        by any step).
    :ivar at: the name of a ``fault_point(name)`` in step code: the fault
        happens there, inside the step, instead: ``"error"`` raises
        ``InjectedFault`` from the call, ``"crash"`` kills the process there
        (what the step did before the point is done, what follows is not),
        ``"cancel"`` has the caller cancel the run there.
    :ivar call: a call to a method of a step's resource, named by the step's
        parameter and the method (``"bank.charge"``; ``"notify"`` for a
        resource that is itself called): the fault happens at that call.
        ``"error"``: the call raises ``InjectedFault`` and is not made.
        ``"timeout"``: the call is made (its side effects happen), then
        raises ``InjectedFault``, as if its answer was lost.  ``"crash"``:
        the process dies as the call is about to be made.  ``"cancel"``: the
        caller cancels the run as the call is about to be made.
    """

    kind: Literal["error", "timeout", "cancel", "crash"]
    step: str | None = None
    nth: int = 0
    at: str | None = None
    call: str | None = attrs.field(default=None, validator=_check)

    def __attrs_post_init__(self) -> None:
        if self.at is not None and self.kind == "timeout":
            raise ValueError(
                f"Fault('timeout', at={self.at!r}): a timeout fault fails a whole attempt "
                "after its step function returned, or a resource call after it was made "
                "(call=), not at a fault point; use kind='error' (or 'crash', 'cancel') at "
                "a fault point, or leave at= out"
            )

    @property
    def site(self) -> tuple[str, str] | None:
        """("point", name) or ("call", name), or None for an attempt's fault."""
        if self.at is not None:
            return ("point", self.at)
        if self.call is not None:
            return ("call", self.call)
        return None


class FaultSites:
    """The fault sites reached so far, and the faults still planned at them."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self._planned = [f for f in faults if f.site is not None]
        self._reached: Counter[tuple[str | None, tuple[str, str]]] = Counter()
        self.calls: Counter[str] = Counter()
        """Resource calls made by steps, by name (``"bank.charge"``)."""

    def reach(self, step: str, site: tuple[str, str]) -> Fault | None:
        """``step`` reaches ``site``: the fault planned for this time, if any
        (handed out once)."""
        counts = (self._reached[step, site], self._reached[None, site])
        self._reached[step, site] += 1
        self._reached[None, site] += 1
        if site[0] == "call":
            self.calls[site[1]] += 1
        for fault in self._planned:
            nth = counts[0] if fault.step is not None else counts[1]
            if fault.site == site and fault.step in (None, step) and fault.nth == nth:
                self._planned.remove(fault)
                return fault
        return None
