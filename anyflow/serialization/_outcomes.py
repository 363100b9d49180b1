"""How a run ended, to and from JSON-safe data: a journal's outcome record.

An outcome is written as ``{"status": "<kind>", ...fields}`` by hooks on the
event converter: ``completed`` with its stop event; ``failed`` with the step,
the error (its type name and message, read back as ``SavedError``) and the
attempts; ``timed_out`` with the timeout and the steps still active;
``broken`` with the step and the message (its exception stays in the process
that raised it); ``cancelled`` alone.  Keys a record does not know are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cattrs
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .._core.state import Broken, Cancelled, Completed, Failed, Outcome, TimedOut
from ..errors import ContextSerdeError
from ._events import _converter, check_json, decode_event
from ._ticks import _decode_error, _encode_error

if TYPE_CHECKING:
    from collections.abc import Callable

TAG = "status"

_KINDS: dict[str, type] = {}


def _register(cls: type, kind: str, **overrides: Any) -> None:
    unstructure_fields: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, _converter, **overrides
    )
    structure_fields: Callable[[Any, type], Any] = make_dict_structure_fn(
        cls, _converter, _cattrs_forbid_extra_keys=False, **overrides
    )

    def unstructure(outcome: Any) -> dict[str, Any]:
        return {TAG: kind, **unstructure_fields(outcome)}

    _converter.register_unstructure_hook(cls, unstructure)
    _converter.register_structure_hook(cls, structure_fields)
    _KINDS[kind] = cls


_ERROR = override(unstruct_hook=_encode_error, struct_hook=lambda v, _: _decode_error(v, "$.error"))

_register(
    Completed,
    "completed",
    stop_event=override(struct_hook=lambda v, _: decode_event(v, "$.stop_event")),
)
_register(Failed, "failed", error=_ERROR)
_register(TimedOut, "timed_out")
_register(Broken, "broken", error=override(omit=True))
_register(Cancelled, "cancelled")


def _structure_outcome(data: Any, _: Any) -> Outcome:
    """The outcome of the kind its ``"status"`` key names."""
    kind = data.get(TAG) if isinstance(data, dict) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown status {kind!r}")
    outcome: Outcome = _converter.structure(data, cls)
    return outcome


_converter.register_structure_hook_func(lambda t: t == Outcome, _structure_outcome)


def _describe(exc: BaseException, type_: Any) -> str:
    # Our own errors say what is wrong already.
    if isinstance(exc, ContextSerdeError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    """``outcome`` as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data: dict[str, Any] = _converter.unstructure(outcome)
    check_json(data, "$")
    return data


def decode_outcome(data: Any) -> Outcome:
    """The outcome ``data`` describes.

    :raises ContextSerdeError: saying what does not fit.
    """
    try:
        return _structure_outcome(data, Outcome)
    except ContextSerdeError:
        raise
    except BaseValidationError as exc:
        detail = cattrs.transform_error(exc, format_exception=_describe)
        raise ContextSerdeError("; ".join(detail)) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ContextSerdeError(str(exc)) from exc
