"""tenacity's own retry, wait and stop objects as parts of an anyflow policy.

tenacity is never imported here unless the program already did (a tenacity
object cannot exist otherwise), so it stays an optional package.

tenacity's parts are called with a ``RetryCallState``; anyflow's with plain
numbers. Two ways across:

* **Translation**, for tenacity's random waits and its combinators: a random
  wait becomes anyflow's equal, which draws from the seeded generator instead
  of the ``random`` module, so replays and simulations wait the same; a
  combinator becomes anyflow's, holding its translated members (which may be
  anyflow parts: ``tenacity.wait_fixed(1) + wait_fixed(2)`` builds a tenacity
  sum).
* **A call with a small state object** for every other part, which reads only
  what tenacity's parts read: the attempt number, the seconds since the start,
  the upcoming sleep and the failed outcome.

A subclass (of a tenacity class, or a part of one's own on tenacity's bases)
is always called, never translated: its ``__call__`` may differ.
"""

from __future__ import annotations

import sys
from typing import Any

import attrs

from . import _retry_parts as parts
from . import _retry_waits as waits

__all__ = ["adapt"]


def adapt(value: object, kind: str, where: str) -> object | None:
    """``value`` as an anyflow part of ``kind`` (retry, wait or stop) if it is
    a tenacity object, else None.

    :raises TypeError: if it is a tenacity part of another kind.
    """
    tenacity = sys.modules.get("tenacity")
    if tenacity is None:
        return None
    # ``tenacity.retry`` is the decorator, not the module: read the modules.
    bases = {
        "retry": sys.modules["tenacity.retry"].retry_base,
        "wait": sys.modules["tenacity.wait"].wait_base,
        "stop": sys.modules["tenacity.stop"].stop_base,
    }
    found = next((k for k, base in bases.items() if isinstance(value, base)), None)
    if found is None:
        if isinstance(value, tenacity.BaseRetrying):
            raise TypeError(
                f"{where} got a tenacity {type(value).__name__}; pass its parts instead: "
                "retry_policy(retry=..., wait=..., stop=...)"
            )
        return None
    if found != kind:
        raise TypeError(f"{where} takes a {kind} part, not the tenacity {found} part {value!r}")
    translate = _TRANSLATIONS.get(type(value).__qualname__)
    if translate is not None and type(value).__module__ == f"tenacity.{kind}":
        translated: object = translate(value)
        return translated
    return {"retry": _TenacityRetry, "wait": _TenacityWait, "stop": _TenacityStop}[kind](value)


_TRANSLATIONS: dict[str, Any] = {
    "wait_random": lambda w: waits.wait_random(min=w.wait_random_min, max=w.wait_random_max),
    "wait_random_exponential": lambda w: waits.wait_random_exponential(
        multiplier=w.multiplier, exp_base=w.exp_base, max=w.max, min=w.min
    ),
    "wait_exponential_jitter": lambda w: waits.wait_exponential_jitter(
        multiplier=w.multiplier, exp_base=w.exp_base, max=w.max, jitter=w.jitter, min=w.min
    ),
    "wait_combine": lambda w: parts.wait_combine(*w.wait_funcs),
    "wait_chain": lambda w: waits.wait_chain(*w.strategies),
    "retry_any": lambda r: parts.retry_any(*r.retries),
    "retry_all": lambda r: parts.retry_all(*r.retries),
    "stop_any": lambda s: parts.stop_any(*s.stops),
    "stop_all": lambda s: parts.stop_all(*s.stops),
}
"""tenacity classes (in their own module) that become anyflow's equal."""


@attrs.frozen
class _Outcome:
    """A failed attempt, as tenacity's ``Future`` shows it."""

    error: BaseException
    failed: bool = True

    def exception(self) -> BaseException:
        return self.error

    def result(self) -> Any:
        raise self.error


@attrs.frozen
class _CallState:
    """What tenacity's parts read of a ``RetryCallState``."""

    attempt_number: int
    seconds_since_start: float = 0.0
    upcoming_sleep: float = 0.0
    outcome: _Outcome | None = None
    idle_for: float = 0.0
    start_time: float = 0.0
    outcome_timestamp: float | None = None
    next_action: None = None
    retry_object: None = None
    fn: None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class _TenacityRetry(parts._RetryBase):
    """A tenacity retry condition, asked about the failed attempt."""

    part: Any

    def __call__(self, error: BaseException) -> bool:
        return bool(self.part(_CallState(attempt_number=1, outcome=_Outcome(error))))


@attrs.frozen
class _TenacityWait(parts._WaitBase):
    """A tenacity wait strategy: retry ``n`` (0 first) follows attempt ``n + 1``."""

    part: Any

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return float(self.part(_CallState(attempt_number=attempts + 1)))


@attrs.frozen
class _TenacityStop(parts._StopBase):
    """A tenacity stop condition, with the attempts and the time so far."""

    part: Any

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        state = _CallState(
            attempt_number=attempts,
            seconds_since_start=elapsed_time,
            upcoming_sleep=upcoming_sleep,
            outcome_timestamp=elapsed_time,
        )
        return bool(self.part(state))
