"""The reducer's state to and from JSON-safe data (what ``ctx.to_dict()`` saves).

The parts of a run are records on the converter (see ``_records``): a
delivery, an executing or retrying attempt (``Worker``), a suspended wait
(``Waiter``) and a delivery's memo (``WaitMemo``) are written by the hooks
registered below, and read back by them, with the JSON path of what is wrong.

What stays here, written by hand, is the shape of the whole state, because it
is not a record of ``RunState``'s fields: the saved names are not its fields
(``lanes`` are saved as ``queues``, ``workers`` as ``executing``, ``retries``
as ``retrying``); mappings keyed by tuples are saved as lists whose items carry
the key (a memo's step and event id, a collect buffer's step and id); what is
derived is not saved and is rebuilt on reading (a lane's count of running
attempts, a join buffer's per-slot counts, which need the workflow's slots,
worker and timer ids); a woken wait queued for a slot is saved as its delivery,
its sends folded into its memo; and every step name is checked against the
workflow being resumed, which the converter's hooks cannot see.  Collect and
join buffers are their events (``EVENTS``), and ``unclaimed`` holds (event,
step) pairs, which are not classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core._pqueue import PQueue
from .._core.state import (
    CollectBuffer,
    Delivery,
    JoinBuffer,
    Lane,
    Resumption,
    RunSpec,
    RunState,
    RunStatus,
    Waiter,
    WaitMemo,
    Worker,
)
from .._core.timers import Timer, timer_id
from ..errors import ContextSerdeError
from ._events import TAG, _converter, check_json, decode_event
from ._records import (
    ERROR,
    EVENT,
    EVENT_MAP,
    EVENTS,
    FLOAT,
    PAIRS,
    TYPES,
    Field,
    decode_events,
    encode_events,
    read,
    register,
)
from ._records import SavedError as SavedError  # its home before _records; pickles name it here

if TYPE_CHECKING:
    from collections.abc import Mapping


def _decode_count(value: Any, path: str) -> int:
    if type(value) is not int or value < 0:
        raise ContextSerdeError(f"{path} must be an integer >= 0, not {value!r}")
    return value


def _decode_sent(data: Any, path: str) -> tuple[int, int] | None:
    if data is None:
        return None
    if not (
        isinstance(data, list) and len(data) == 2 and all(type(n) is int and n > 0 for n in data)
    ):
        raise ContextSerdeError(f"{path} must be [attempt, count], two positive integers")
    return (data[0], data[1])


def _encode_collected(
    collected: Mapping[str, tuple[tuple[Any, tuple[Any, ...] | None], ...]],
) -> dict[str, Any]:
    unstructure = _converter.unstructure
    return {
        key: [
            {
                "event": unstructure(event),
                "result": None if result is None else [unstructure(ev) for ev in result],
            }
            for event, result in entries
        ]
        for key, entries in collected.items()
    }


def _decode_collected(
    data: Any, path: str
) -> dict[str, tuple[tuple[Any, tuple[Any, ...] | None], ...]]:
    if data is None:  # as a context saved before memos had it
        return {}
    if not isinstance(data, dict):
        raise ContextSerdeError(f"{path} must be an object of lists, not {type(data).__name__}")
    collected = {}
    for key, entries in data.items():
        if not isinstance(entries, list):
            raise ContextSerdeError(f"{path}.{key} must be a list")
        collected[key] = tuple(
            _decode_entry(entry, f"{path}.{key}[{j}]") for j, entry in enumerate(entries)
        )
    return collected


def _decode_entry(data: Any, path: str) -> tuple[Any, tuple[Any, ...] | None]:
    """One event a delivery collected, and what ``collect_events`` returned."""
    if not isinstance(data, dict) or set(data) != {"event", "result"}:
        raise ContextSerdeError(f"expected {{'event', 'result'}} at {path}")
    result = data["result"]
    if result is not None and not isinstance(result, list):
        raise ContextSerdeError(f"{path}.result must be a list or null")
    return (
        decode_event(data["event"], f"{path}.event"),
        None if result is None else decode_events(result, f"{path}.result"),
    )


_COUNT = Field(None, _decode_count)
"""The events an attempt has sent (written only when it sent any)."""

register(
    Delivery,
    event=EVENT,
    last_error=ERROR.optional(),
    bound=EVENTS.optional(),  # a join step's set
    added=("bound", "first_started_at", "last_failed_at"),
    absent=("first_failed_at",),
)
register(Worker, sent=_COUNT, added=("sent",), omitted=("deadline",))
register(
    Waiter,
    event_types=TYPES,
    requirements=PAIRS,
    deadline=FLOAT.optional(),
    budget=FLOAT.optional(),
    sent=_COUNT,
    added=("sent",),
    absent=("deadline", "budget"),
)
register(
    WaitMemo,
    published=EVENT_MAP,
    answers=EVENT_MAP,
    collected=Field(_encode_collected, _decode_collected),
    sent=Field(list, _decode_sent),
    added=("sent",),
    absent=("collected",),
    omitted=("deadlines",),
)
_MEMO_KEY = ("step", "event_id")
"""What a saved memo's item holds beside the memo: the delivery it is of."""


def encode_state(state: RunState, *, check: bool = True) -> dict[str, Any]:
    """``state`` as JSON-safe data (with ``check=False``, values outside events
    that JSON cannot hold, such as a waiter's requirements, are left as they
    are, for a caller that pickles them).

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    unstructure = _converter.unstructure
    data = {
        "status": state.status.value,
        "next_event_id": state.next_event_id,
        "next_worker_id": state.next_worker_id,
        "queues": {
            # A woken wait that had not got its slot back yet is saved as its
            # delivery: on resume the step runs again, and its memo answers.
            name: [
                unstructure(item.delivery if isinstance(item, Resumption) else item)
                for item in lane.queue
            ]
            for name, lane in state.lanes.items()
            if lane.queue
        },
        "executing": [unstructure(w) for w in state.workers.values()],
        "waiting": [unstructure(w) for w in state.waiting.values()],
        "retrying": [unstructure(w) for w in state.retries.values()],
        "memos": [
            {"step": step, "event_id": event_id, **unstructure(memo)}
            for (step, event_id), memo in _with_queued_sends(state).items()
        ],
        "unclaimed": [{"event": unstructure(ev), "step": step} for ev, step in state.unclaimed],
        "collections": [
            {"step": step, "buffer": buffer_id, "events": encode_events(buffer.items())}
            for (step, buffer_id), buffer in state.collections.items()
        ],
        "recoveries": dict(state.recoveries),
    }
    if state.joins:  # written only when a join step holds events
        data["joins"] = [
            {"step": step, "events": encode_events(buffer.events.items())}
            for step, buffer in state.joins.items()
        ]
    if check:
        check_json(data, "$.run")
    else:
        _check_events(data, "$.run")
    return data


def _check_events(data: Any, path: str) -> None:
    """Raise ``ContextSerdeError`` at the first value JSON cannot hold in an
    event of ``data`` (events are JSON, whoever pickles what else)."""
    if isinstance(data, dict):
        if TAG in data:
            check_json(data, path)
            return
        for key, value in data.items():
            _check_events(value, f"{path}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_events(value, f"{path}[{index}]")


def _with_queued_sends(state: RunState) -> Mapping[tuple[str, int], WaitMemo]:
    """``state.memos``, and what the woken waits queued for a slot had sent.

    Such a wait is saved as its delivery alone (its worker does not outlive
    the save), so the count of its sends, which its re-run must not send
    again, goes to its memo, as a resume would put it.
    """
    memos: dict[tuple[str, int], WaitMemo] | None = None
    for step, lane in state.lanes.items():
        for item in lane.queue:
            if isinstance(item, Resumption) and item.sent:
                if memos is None:
                    memos = dict(state.memos)
                key = (step, item.delivery.event_id)
                memos[key] = memos.get(key, WaitMemo()).sends(item.delivery.attempt, item.sent)
    return state.memos if memos is None else memos


class _Reader:
    """Reads the state's shape with the JSON path of every value at hand for errors."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec

    def get(self, data: Any, key: str, kind: type | tuple[type, ...], path: str) -> Any:
        if not isinstance(data, dict) or key not in data:
            raise ContextSerdeError(f"missing {path}.{key}")
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise ContextSerdeError(f"{path}.{key} must be {names}, not {type(value).__name__}")
        return value

    def step(self, name: Any, path: str) -> str:
        if name not in self.spec.steps:
            raise ContextSerdeError(
                f"{path} names step {name!r}, which this workflow does not have (its steps: "
                f"{', '.join(sorted(self.spec.steps))}); was the workflow changed since?"
            )
        return str(name)

    def attempts(self, data: Any, key: str, cls: type, path: str) -> list[Any]:
        """The ``Worker`` or ``Waiter`` records of the list ``key``."""
        records = []
        for i, item in enumerate(self.get(data, key, list, path)):
            where = f"{path}.{key}[{i}]"
            record = read(item, cls, where)
            self.step(record.step, f"{where}.step")
            records.append(record)
        return records


def decode_state(data: Any, spec: RunSpec) -> RunState:
    """The state ``data`` describes, for a run of a workflow with ``spec``.

    :raises ContextSerdeError: naming the JSON path of what is wrong.
    """
    r = _Reader(spec)
    path = "$.run"
    status_text = r.get(data, "status", str, path)
    try:
        status = RunStatus(status_text)
    except ValueError:
        # from None: the message names the value; the enum lookup adds nothing
        raise ContextSerdeError(f"{path}.status {status_text!r} is not a run status") from None
    lanes = {name: Lane() for name in spec.steps}
    for name, items in r.get(data, "queues", dict, path).items():
        step = r.step(name, f"{path}.queues")
        queue: PQueue[Delivery | Resumption] = PQueue()
        if not isinstance(items, list):
            raise ContextSerdeError(f"{path}.queues.{name} must be a list")
        for i, item in enumerate(items):
            queue = queue.push(read(item, Delivery, f"{path}.queues.{name}[{i}]"))
        lanes[step] = Lane(queue, 0)
    executing: list[Worker] = r.attempts(data, "executing", Worker, path)
    retrying: list[Worker] = r.attempts(data, "retrying", Worker, path)
    waiting: list[Waiter] = r.attempts(data, "waiting", Waiter, path)
    memos = {}
    for i, m in enumerate(r.get(data, "memos", list, path)):
        where = f"{path}.memos[{i}]"
        step = r.step(r.get(m, "step", str, where), f"{where}.step")
        event_id = r.get(m, "event_id", int, where)
        fields = {key: value for key, value in m.items() if key not in _MEMO_KEY}
        memos[(step, event_id)] = read(fields, WaitMemo, where)
    collections = {}
    for i, c in enumerate(r.get(data, "collections", list, path)):
        where = f"{path}.collections[{i}]"
        step = r.step(r.get(c, "step", str, where), f"{where}.step")
        events = decode_events(r.get(c, "events", list, where), f"{where}.events")
        collections[(step, r.get(c, "buffer", str, where))] = CollectBuffer.of(list(events))
    joins = {}
    for i, item in enumerate(data.get("joins") or []):
        where = f"{path}.joins[{i}]"
        step = r.step(r.get(item, "step", str, where), f"{where}.step")
        slots = spec.steps[step].slots
        if not slots:
            raise ContextSerdeError(
                f"{where} holds events for step {step!r}, which is not a join step in this "
                "workflow (it takes one event parameter); was the workflow changed since?"
            )
        held = decode_events(r.get(item, "events", list, where), f"{where}.events")
        joins[step] = JoinBuffer.of(list(held), slots)
    unclaimed: list[tuple[Any, str | None]] = []
    for i, item in enumerate(r.get(data, "unclaimed", list, path)):
        where = f"{path}.unclaimed[{i}]"
        sent_to = item.get("step") if isinstance(item, dict) else None
        target = None if sent_to is None else r.step(sent_to, f"{where}.step")
        event = decode_event(r.get(item, "event", dict, where), f"{where}.event")
        unclaimed.append((event, target))
    recoveries = {
        r.step(name, f"{path}.recoveries"): count
        for name, count in r.get(data, "recoveries", dict, path).items()
    }
    # Executing and waiting attempts are saved as such, for a faithful picture;
    # RunResumed puts them back in their queues.
    workers = dict(enumerate(executing))
    offset = len(workers)
    waiting_map = {offset + i: w for i, w in enumerate(waiting)}
    retries = {timer_id(Timer.SAVED_RETRY, i): w for i, w in enumerate(retrying)}
    for w in workers.values():
        lane = lanes[w.step]
        lanes[w.step] = Lane(lane.queue, lane.running + 1)
    return RunState(
        spec,
        status=status,
        lanes=lanes,
        workers=workers,
        waiting=waiting_map,
        memos=memos,
        unclaimed=tuple(unclaimed),
        recoveries=recoveries,
        retries=retries,
        collections=collections,
        next_event_id=r.get(data, "next_event_id", int, path),
        next_worker_id=max(r.get(data, "next_worker_id", int, path), offset + len(waiting)),
        joins=joins,
    )
