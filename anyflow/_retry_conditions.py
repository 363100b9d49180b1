"""Retry conditions: is the error a step failed with worth another attempt?

A condition is called with the error and answers True to retry. These are
tenacity's conditions (llama-index-workflows took its vocabulary from there),
as frozen attrs classes that compare by value and show their arguments in
their repr; they combine with ``|`` and ``&`` through ``_RetryBase``
(``_retry_parts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from ._retry_parts import _RetryBase

__all__ = [
    "retry_always",
    "retry_if_exception",
    "retry_if_exception_cause_type",
    "retry_if_exception_message",
    "retry_if_exception_type",
    "retry_if_not_exception_message",
    "retry_if_not_exception_type",
    "retry_never",
    "retry_unless_exception_type",
]


def _pattern(match: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    return re.compile(match) if isinstance(match, str) else match


ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


@attrs.frozen
class retry_if_exception(_RetryBase):
    """Retry when ``predicate(error)`` is true."""

    predicate: Callable[[BaseException], bool]

    def __call__(self, error: BaseException) -> bool:
        return bool(self.predicate(error))


@attrs.frozen
class retry_if_exception_type(_RetryBase):
    """Retry when the error is an instance of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        return isinstance(error, self.exception_types)


@attrs.frozen
class retry_if_not_exception_type(_RetryBase):
    """Retry when the error is *not* an instance of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        return not isinstance(error, self.exception_types)


@attrs.frozen
class retry_unless_exception_type(retry_if_not_exception_type):
    """tenacity's other name for ``retry_if_not_exception_type`` (a step that
    failed always has an exception, so the two mean the same here)."""


def _check_message(
    instance: retry_if_exception_message, _: object, match: str | re.Pattern[str] | None
) -> None:
    name = type(instance).__name__
    if instance.message is None and match is None:
        raise TypeError(f"{name}() needs message= (the exact text) or match= (a regex)")
    if instance.message is not None and match is not None:
        raise TypeError(f"{name}() takes message= or match=, not both")


@attrs.frozen
class retry_if_exception_message(_RetryBase):
    """Retry when ``str(error)`` equals ``message``, or when the regex ``match``
    is found in it (``re.search``)."""

    message: str | None = None
    match: str | re.Pattern[str] | None = attrs.field(default=None, validator=_check_message)

    def __call__(self, error: BaseException) -> bool:
        text = str(error)
        if self.message is not None:
            return text == self.message
        pattern = _pattern(self.match)
        return pattern is not None and pattern.search(text) is not None


@attrs.frozen
class retry_if_not_exception_message(retry_if_exception_message):
    """Retry unless the message matches, as ``retry_if_exception_message`` reads it."""

    def __call__(self, error: BaseException) -> bool:
        return not super().__call__(error)


@attrs.frozen
class retry_if_exception_cause_type(_RetryBase):
    """Retry when an exception in the error's ``__cause__`` chain (``raise ...
    from cause``, not the implicit ``__context__``) is of ``exception_types``."""

    exception_types: type[BaseException] | tuple[type[BaseException], ...] = Exception

    def __call__(self, error: BaseException) -> bool:
        cause = error.__cause__
        while cause is not None:
            if isinstance(cause, self.exception_types):
                return True
            cause = cause.__cause__
        return False


@attrs.frozen
class retry_always(_RetryBase):
    """Retry every error."""

    def __call__(self, error: BaseException) -> bool:
        return True


@attrs.frozen
class retry_never(_RetryBase):
    """Retry no error."""

    def __call__(self, error: BaseException) -> bool:
        return False
