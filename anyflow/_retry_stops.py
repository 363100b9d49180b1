"""Stop conditions: give up now, or retry?

A stop condition is called with the attempts made so far (1 after the first
failure), the seconds elapsed since the first attempt started and the delay
about to be waited (``upcoming_sleep``), and answers True to give up. They
combine with ``|`` and ``&`` through ``_StopBase`` (``_retry_parts``).
"""

from __future__ import annotations

import attrs

from ._retry_parts import _seconds, _StopBase

__all__ = [
    "stop_after_attempt",
    "stop_after_delay",
    "stop_before_delay",
    "stop_never",
]


@attrs.frozen
class stop_after_attempt(_StopBase):
    """Give up once ``max_attempt_number`` attempts were made (the first included)."""

    max_attempt_number: int

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return attempts >= self.max_attempt_number


@attrs.frozen
class stop_after_delay(_StopBase):
    """Give up once ``max_delay`` seconds have passed."""

    max_delay: float = attrs.field(converter=_seconds)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time >= self.max_delay


@attrs.frozen
class stop_before_delay(_StopBase):
    """Give up if waiting the next delay would reach ``max_delay`` seconds."""

    max_delay: float = attrs.field(converter=_seconds)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time + upcoming_sleep >= self.max_delay


@attrs.frozen
class stop_never(_StopBase):
    """Never give up (bound the run with the workflow's ``timeout`` instead)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return False
