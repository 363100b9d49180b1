"""The journal's records and how a run is rebuilt from them.

A record is JSON text prefixed by its CRC-32 (``"1a2b3c4d:{...}"``), so damage
that still parses as JSON is caught too.  A run is rebuilt by folding its tick
records through ``reduce`` from the initial state: the reducer is pure, so the
fold gives the state the run had when its last tick was committed.
"""

from __future__ import annotations

import json
import zlib
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from ..errors import (
    ContextSerdeError,
    DurabilityError,
    JournalCorruptError,
    StateTypeError,
    WorkflowChangedError,
)
from ..runtime.vocabulary import RunState, TickRejected, reduce, run_spec
from ..serialization import (
    decode_event,
    decode_tick,
    decode_value,
    encode_event,
    encode_outcome,
    encode_tick,
    type_name,
)
from ..serialization import decode_outcome as decode_outcome_data

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from ..context import StateStore
    from ..events import Event
    from ..runtime.vocabulary import Outcome, RunSpec, Tick
    from ..workflow import Workflow

__all__ = [
    "MAX_NESTING",
    "changes",
    "checked_event_record",
    "checked_tick_record",
    "decode_outcome",
    "decode_record",
    "decode_ticks",
    "encode_outcome",
    "encode_record",
    "fingerprint",
    "replay",
    "status_of",
]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENCODE = _ENCODER.encode
"""What ``json.dumps`` with these options does, without building an encoder
for every record (a run writes one per tick and one per event)."""

_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False
    )
)
"""The C encoder ``_ENCODE`` makes for each call, made once.  Without the
check for circular references (a value that refers to itself recurses until
``RecursionError``, and is then encoded by ``_ENCODE``, which says what it
always said): ``encode`` and ``iterencode`` cost as much as the encoding of a
small record, and a run writes many."""


def _encode_json(data: Any) -> str:
    if _C_ENCODE is None:
        return _ENCODE(data)
    try:
        return "".join(_C_ENCODE(data, 0))
    except RecursionError:
        return _ENCODE(data)


_RAW_DECODE = json.JSONDecoder().raw_decode


def _loads(body: str) -> Any:
    """``json.loads(body)``, for a record's body: that skips white space
    around the value with two regular expressions, which cost more than
    reading a small record; the bodies the journal writes have none."""
    try:
        data, end = _RAW_DECODE(body)
        if end == len(body):
            return data
    except ValueError:
        pass
    return json.loads(body)  # white space, or not JSON: as json.loads has it


def encode_record(data: Any) -> str:
    """``data`` (JSON-safe) as one checksummed record.

    :raises ContextSerdeError: for a string that is not text (a lone surrogate
        such as ``"\\ud800"``, which no store can hold), or an integer too long
        to write as text.
    """
    try:
        body = _encode_json(data)
    except ValueError as exc:  # an int over sys.get_int_max_str_digits() digits
        raise ContextSerdeError(f"a value cannot be written as JSON: {exc}") from exc
    try:
        encoded = body.encode()
    except UnicodeEncodeError as exc:
        bad = body[exc.start : exc.end]
        raise ContextSerdeError(
            f"the string holding {bad!r} is not text (a lone surrogate): encode or drop it"
        ) from exc
    return f"{zlib.crc32(encoded):08x}:{body}"


def decode_record(text: str, run_id: str, kind: str, seq: int) -> Any:
    """The data of one record.

    :raises JournalCorruptError: naming the run, the kind of record and its position.
    """
    where = f"{kind} record {seq} of run {run_id!r}"
    checksum, sep, body = text.partition(":")
    if not sep or len(checksum) != 8:
        raise JournalCorruptError(f"{where} is not a journal record (it starts {text[:20]!r})")
    if f"{zlib.crc32(body.encode()):08x}" != checksum:
        raise JournalCorruptError(
            f"{where} is damaged (its checksum does not match); nothing was changed: "
            "restore the store from a backup, or discard the run"
        )
    try:
        return _loads(body)
    except ValueError as exc:
        raise JournalCorruptError(f"{where} is not valid JSON: {exc}") from exc


MAX_NESTING = 100
"""How deep lists and objects may nest in a value sent into a durable run from
outside.  Deeper values may exceed Python's recursion limit when the record
is written or read back, depending on how deep the stack is at that moment;
no event needs them."""


_WRAPPING = 5
"""Levels a record adds around a value: tick, event, fields, free fields."""


def _nesting(data: Any) -> int:
    """How deep lists and objects nest in ``data`` (level by level, no recursion)."""
    depth, level = 0, [data]
    while level:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            break
        depth += 1
        level = [x for c in containers for x in (c.values() if isinstance(c, dict) else c)]
    return depth


def _check_nesting(data: Any) -> None:
    if _nesting(data) > MAX_NESTING + _WRAPPING:
        raise ContextSerdeError(f"it nests deeper than {MAX_NESTING} levels")


def _checked(encode: Callable[[], Any], decode: Callable[[Any], object]) -> str:
    """The record of what ``encode`` makes, once it is known to read back.

    Whatever a caller sends must be recordable before the send returns:
    once accepted, a value the journal cannot write (or read back after a
    crash) would stop the run.  So the value is encoded, checked, written as
    a record and decoded again here, in the caller.
    """
    try:
        data = encode()
        try:
            text = encode_record(data)
        except ContextSerdeError:
            _check_nesting(data)  # the first thing said of a value that nests too deep
            raise
        body = text.partition(":")[2]
        # Each level takes a bracket (strings may hold more): only a value
        # with enough of them can nest too deep, and only it is walked.
        if body.count("{") + body.count("[") > MAX_NESTING + _WRAPPING:
            _check_nesting(data)
        decode(_loads(body))
    except ContextSerdeError:
        raise
    except RecursionError:
        # from None: a RecursionError's traceback is a thousand frames of encoder
        raise ContextSerdeError(f"it nests deeper than {MAX_NESTING} levels") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ContextSerdeError(f"{type(exc).__name__}: {exc}") from exc
    return text


def checked_tick_record(tick: Tick) -> str:
    """The record of ``tick`` (one a caller sends), checked to read back.

    :raises ContextSerdeError: naming what cannot be recorded.
    """
    return _checked(lambda: encode_tick(tick), decode_tick)


def checked_event_record(event: Event) -> str:
    """The record of ``event`` (a start event), checked to read back.

    :raises ContextSerdeError: naming what cannot be recorded.
    """
    return _checked(lambda: encode_event(event), lambda data: decode_event(data, "$"))


def fingerprint(workflow: Workflow) -> dict[str, Any]:
    """The parts of a workflow that its recorded ticks depend on: step names,
    what each accepts, how many workers each has, and who catches whose
    failures.  Timeouts and retry policies may change between a crash and a
    resume (their effects are recorded as ticks)."""
    spec = run_spec(workflow)
    return {
        "workflow": type_name(type(workflow)),
        "steps": {
            name: {
                "accepts": sorted(type_name(t) for t in step.accepts),
                "num_workers": step.num_workers,
            }
            for name, step in sorted(spec.steps.items())
        },
        "catchers": {name: list(catcher) for name, catcher in sorted(spec.catchers.items())},
    }


def changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words."""
    found: list[str] = []
    if recorded.get("workflow") != current["workflow"]:
        found.append(f"the run is of {recorded.get('workflow')}, not {current['workflow']}")
    old_steps: dict[str, Any] = recorded.get("steps", {})
    new_steps: dict[str, Any] = current["steps"]
    for name in sorted(old_steps.keys() - new_steps.keys()):
        found.append(f"step {name!r} was removed")
    for name in sorted(new_steps.keys() - old_steps.keys()):
        found.append(f"step {name!r} was added")
    for name in sorted(old_steps.keys() & new_steps.keys()):
        old, new = old_steps[name], new_steps[name]
        if old.get("accepts") != new["accepts"]:
            found.append(
                f"step {name!r} accepts {', '.join(new['accepts'])} "
                f"(was {', '.join(old.get('accepts', []))})"
            )
        if old.get("num_workers") != new["num_workers"]:
            found.append(
                f"step {name!r} has num_workers={new['num_workers']} (was {old.get('num_workers')})"
            )
    if recorded.get("catchers") != current["catchers"] and not found:
        found.append(
            f"@catch_error steps are {current['catchers']} (were {recorded.get('catchers')})"
        )
    return found


def check_fingerprint(run_id: str, workflow: Workflow, recorded: Any) -> None:
    """:raises WorkflowChangedError: if ``recorded`` (the fingerprint a run was
    recorded with) is not ``workflow``'s, naming what changed."""
    current = fingerprint(workflow)
    started_by = recorded.get("workflow") if isinstance(recorded, dict) else None
    if started_by is not None and started_by != current["workflow"]:
        raise WorkflowChangedError(
            f"run {run_id!r} is a run of another workflow, {started_by}, not of "
            f"{current['workflow']}: resume it with {started_by}, or give this "
            "workflow's run another run id"
        )
    if recorded != current:
        raise WorkflowChangedError(
            f"run {run_id!r} was recorded with another version of "
            f"{type(workflow).__qualname__}: {'; '.join(changes(recorded, current))}. "
            "Resume it with the workflow it was started with, or start a new run id"
        )


def default_start(workflow: Workflow, run_id: str) -> Event:
    """The start event of a run resumed by id without fields, when nothing of
    it is recorded: the workflow's start event class with no fields.

    :raises DurabilityError: if that class needs fields.
    """
    start_class = workflow.start_event_class
    try:
        return start_class()
    except TypeError as exc:
        raise DurabilityError(
            f"no run {run_id!r} is recorded, and {start_class.__name__} cannot be made "
            f"without fields ({exc}): pass the start event's fields to wf.run() to start it"
        ) from exc


def load_state(store: StateStore[Any], data: Any, run_id: str) -> None:
    """Load a recorded snapshot (JSON data) into the run's state ``store``.

    :raises DurabilityError: if it does not fit the store's state type.
    """
    try:
        store.restore(decode_value(data, store.state_type or Any, "$.state"))
    except (ContextSerdeError, StateTypeError) as exc:
        raise DurabilityError(f"the state snapshot of run {run_id!r} is unreadable: {exc}") from exc


def status_of(outcome: Outcome) -> str:
    """The status a run that ended with ``outcome`` is listed with."""
    return outcome.status.value


def decode_outcome(text: str, run_id: str) -> Outcome:
    """The outcome of run ``run_id`` from its outcome record ``text``.

    :raises JournalCorruptError: if the record is damaged or unreadable.
    """
    try:
        return decode_outcome_data(decode_record(text, run_id, "outcome", 0))
    except ContextSerdeError as exc:
        raise JournalCorruptError(
            f"the outcome record of run {run_id!r} is unreadable: {exc}"
        ) from exc


def decode_ticks(run_id: str, records: Iterable[tuple[int, str]]) -> Iterator[Tick]:
    """The ticks of ``records`` (ordered by sequence number), one at a time.

    :raises JournalCorruptError: for a missing, damaged or unreadable record.
    """
    for position, (seq, text) in enumerate(records):
        if seq != position:
            raise JournalCorruptError(
                f"tick record {position} of run {run_id!r} is missing (the next one is "
                f"{seq}): the journal is truncated or damaged; nothing was changed"
            )
        try:
            yield decode_tick(decode_record(text, run_id, "tick", seq), f"$[{seq}]")
        except ContextSerdeError as exc:
            raise JournalCorruptError(f"tick record {seq} of run {run_id!r}: {exc}") from exc


def replay(run_id: str, spec: RunSpec, records: Sequence[tuple[int, str]]) -> RunState:
    """The state after every tick of ``records`` (ordered by sequence number).

    :raises JournalCorruptError: for a missing, damaged or unreadable record,
        or a tick that the run's state machine rejects.
    """
    return replay_ticks(run_id, spec, decode_ticks(run_id, records))


def replay_ticks(run_id: str, spec: RunSpec, ticks: Iterable[Tick]) -> RunState:
    """The state after every tick of ``ticks``, in order.

    :raises JournalCorruptError: for a tick that the run's state machine rejects.
    """
    state = RunState.initial(spec)
    for seq, tick in enumerate(ticks):
        try:
            state, _ = reduce(state, tick)
        except TickRejected as exc:
            raise JournalCorruptError(
                f"tick record {seq} of run {run_id!r} does not fit the run ({exc}): the "
                "journal is damaged, or the workflow changed in a way its fingerprint "
                "does not show"
            ) from exc
    return state
