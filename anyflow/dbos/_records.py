"""The records a run's DBOS workflow holds, on anyflow's one converter
(``anyflow.serialization.records``).  Each is written as one checksummed
journal record (``encode_record``); tests/golden pins their bytes, so the
keys keep their one-letter names, and the fields are written in the order
declared, those that are optional only when set.

- ``Batch``: one ``anyflow.record`` step, the batch of ticks a commit records;
- ``Receive``: an ``anyflow.record`` step announcing a round of
  ``DBOS.recv``, so that a replay receives at the same places;
- ``End``: what the run's DBOS workflow returns, its outcome.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..durable.journal import decode_record, encode_record
from ..errors import ContextSerdeError, JournalCorruptError
from ..runtime.vocabulary import Outcome
from ..serialization import decode_outcome, encode_outcome, encode_value, records

__all__ = ["Batch", "End", "Receive", "read_end", "read_step", "write"]


@attrs.frozen
class Batch:
    """The ticks of one commit and what goes with them."""

    t: tuple[Any, ...] = ()
    """The ticks, in the order the driver took them, as ``encode_tick`` wrote
    them (``_run.decode_ticks`` reads them back: a reader of the events alone
    neither pays for the ticks nor needs every event class they hold)."""
    e: tuple[Any, ...] = ()
    """The events recorded with them, as ``encode_event`` wrote them when they
    were published (``_run.decode_events`` reads them back)."""
    m: int | None = None
    """How many of the ticks came as DBOS messages (a replay takes as many
    from what it receives again); set when messages were waiting."""
    f: dict[str, Any] | None = None
    """The workflow's fingerprint, with a run's first batch."""
    s: Any = None
    """The state store (``ctx.store``), when it changed."""


@attrs.frozen
class Receive:
    """A round of ``DBOS.recv`` follows."""

    recv: bool = True


@attrs.frozen
class End:
    """How the run ended, and the events published that no batch recorded."""

    o: Outcome
    e: tuple[Any, ...] = ()
    """As ``Batch.e``."""


def _decode_list(data: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list, not {type(data).__name__}")
    return tuple(data)


_LIST = records.Field(list, _decode_list)
"""Encoded ticks or events, as a list (a string or an object is refused)."""

records.register(Batch, absent=("t",), added=("e", "m", "f", "s"), t=_LIST, e=_LIST)
records.register(Receive)
records.register(End, absent=("e",), o=records.Field(encode_outcome, decode_outcome), e=_LIST)


def write(record: Batch | Receive | End) -> str:
    """``record`` as the text of one record.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    return encode_record(encode_value(record, "$"))


def read_step(text: str, run_id: str, seq: int) -> Batch | Receive:
    """The ``anyflow.record`` step ``seq`` of the run.

    :raises JournalCorruptError: naming the record and the JSON path of what is wrong.
    """
    data = decode_record(text, run_id, "batch", seq)
    if not isinstance(data, dict):
        raise JournalCorruptError(f"batch record {seq} of run {run_id!r} is not a batch")
    kind = Receive if "recv" in data else Batch
    try:
        step: Batch | Receive = records.read(data, kind, "$")
    except ContextSerdeError as exc:
        raise JournalCorruptError(f"batch record {seq} of run {run_id!r}: {exc}") from exc
    return step


def read_end(text: str, run_id: str) -> End:
    """The record the run's DBOS workflow returned.

    :raises JournalCorruptError: naming the JSON path of what is wrong.
    """
    data = decode_record(text, run_id, "outcome", 0)
    try:
        end: End = records.read(data, End, "$")
    except ContextSerdeError as exc:
        raise JournalCorruptError(
            f"the outcome record of run {run_id!r} is unreadable: {exc}"
        ) from exc
    return end
