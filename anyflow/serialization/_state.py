"""The reducer's state to and from JSON-safe data (what ``ctx.to_dict()`` saves)."""

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
from ._events import check_json, decode_event, encode_event, event_type, type_name

if TYPE_CHECKING:
    from collections.abc import Mapping


class SavedError(Exception):
    """An exception from a saved run, brought back as its type name and message
    (the original class and traceback stay in the process that raised it)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"SavedError({self.type_name}: {self.args[0]})"


def encode_state(state: RunState, *, check: bool = True) -> dict[str, Any]:
    """``state`` as JSON-safe data (with ``check=False``, values outside events
    that JSON cannot hold, such as a waiter's requirements, are left as they
    are, for a caller that pickles them).

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    memos = _with_queued_sends(state)
    data = {
        "status": state.status.value,
        "next_event_id": state.next_event_id,
        "next_worker_id": state.next_worker_id,
        "queues": {
            name: [_item(item, f"$.run.queues.{name}[{i}]") for i, item in enumerate(lane.queue)]
            for name, lane in state.lanes.items()
            if lane.queue
        },
        "executing": [
            _worker(w, f"$.run.executing[{i}]") for i, w in enumerate(state.workers.values())
        ],
        "waiting": [
            _waiter(w, f"$.run.waiting[{i}]") for i, w in enumerate(state.waiting.values())
        ],
        "retrying": [
            _worker(w, f"$.run.retrying[{i}]") for i, w in enumerate(state.retries.values())
        ],
        "memos": [
            {
                "step": step,
                "event_id": event_id,
                "published": {
                    key: encode_event(ev, f"$.run.memos[{i}].published.{key}")
                    for key, ev in memo.published.items()
                },
                "answers": {
                    key: encode_event(ev, f"$.run.memos[{i}].answers.{key}")
                    for key, ev in memo.answers.items()
                },
                "collected": {
                    key: [
                        _collected(event, result, f"$.run.memos[{i}].collected.{key}[{j}]")
                        for j, (event, result) in enumerate(entries)
                    ]
                    for key, entries in memo.collected.items()
                },
            }
            | _sent(memo)
            for i, ((step, event_id), memo) in enumerate(memos.items())
        ],
        "unclaimed": [
            {"event": encode_event(ev, f"$.run.unclaimed[{i}].event"), "step": step}
            for i, (ev, step) in enumerate(state.unclaimed)
        ],
        "collections": [
            {
                "step": step,
                "buffer": buffer_id,
                "events": [
                    encode_event(ev, f"$.run.collections[{i}].events[{j}]")
                    for j, ev in enumerate(buffer.items())
                ],
            }
            for i, ((step, buffer_id), buffer) in enumerate(state.collections.items())
        ],
        "recoveries": dict(state.recoveries),
    }
    if state.joins:  # written only when a join step holds events
        data["joins"] = [
            {
                "step": step,
                "events": [
                    encode_event(ev, f"$.run.joins[{i}].events[{j}]")
                    for j, ev in enumerate(buffer.events.items())
                ],
            }
            for i, (step, buffer) in enumerate(state.joins.items())
        ]
    if check:
        check_json(data, "$.run")
    return data


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


def _sent(memo: WaitMemo) -> dict[str, Any]:
    """The memo's count of sends, when there is one: ``{"sent": [attempt, count]}``."""
    return {} if memo.sent is None else {"sent": list(memo.sent)}


def _read_sent(data: Any, path: str) -> tuple[int, int] | None:
    if data is None:
        return None
    if not (
        isinstance(data, list) and len(data) == 2 and all(type(n) is int and n > 0 for n in data)
    ):
        raise ContextSerdeError(f"{path} must be [attempt, count], two positive integers")
    return (data[0], data[1])


def _count(value: Any, path: str) -> int:
    if type(value) is not int or value < 0:
        raise ContextSerdeError(f"{path} must be an integer >= 0, not {value!r}")
    return value


def _collected(event: Any, result: tuple[Any, ...] | None, path: str) -> dict[str, Any]:
    return {
        "event": encode_event(event, f"{path}.event"),
        "result": None
        if result is None
        else [encode_event(ev, f"{path}.result[{k}]") for k, ev in enumerate(result)],
    }


def _read_collected(data: Any, path: str) -> tuple[Any, tuple[Any, ...] | None]:
    if not isinstance(data, dict) or set(data) != {"event", "result"}:
        raise ContextSerdeError(f"expected {{'event', 'result'}} at {path}")
    result = data["result"]
    if result is not None and not isinstance(result, list):
        raise ContextSerdeError(f"{path}.result must be a list or null")
    return (
        decode_event(data["event"], f"{path}.event"),
        None
        if result is None
        else tuple(decode_event(ev, f"{path}.result[{k}]") for k, ev in enumerate(result)),
    )


def _time(data: Any, key: str, path: str) -> float | None:
    """A delivery's tick time ``key``: a number, or null or absent."""
    value = data.get(key) if isinstance(data, dict) else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ContextSerdeError(f"{path}.{key} must be a number or null")
    return value


def _delivery(d: Delivery, path: str) -> dict[str, Any]:
    error = None
    if d.last_error is not None:
        name = getattr(d.last_error, "type_name", type(d.last_error).__name__)
        error = {"type": name, "message": str(d.last_error)}
    data = {
        "event_id": d.event_id,
        "event": encode_event(d.event, f"{path}.event"),
        "attempt": d.attempt,
        "last_error": error,
        "first_failed_at": d.first_failed_at,
    }
    if d.bound is not None:  # a join step's set (written only for one)
        data["bound"] = [encode_event(ev, f"{path}.bound[{i}]") for i, ev in enumerate(d.bound)]
    # Added after contexts were first saved: written only when set.
    if d.first_started_at is not None:
        data["first_started_at"] = d.first_started_at
    if d.last_failed_at is not None:
        data["last_failed_at"] = d.last_failed_at
    return data


def _item(item: Delivery | Resumption, path: str) -> dict[str, Any]:
    if isinstance(item, Resumption):
        # A woken wait that had not got its slot back yet: on resume the step
        # runs again, and its memo answers the wait.
        return _delivery(item.delivery, f"{path}.delivery")
    return _delivery(item, path)


def _worker(w: Worker, path: str) -> dict[str, Any]:
    data: dict[str, Any] = {"step": w.step, "delivery": _delivery(w.delivery, f"{path}.delivery")}
    if w.sent:
        data["sent"] = w.sent  # events the attempt sent (written only if it sent any)
    return data


def _waiter(w: Waiter, path: str) -> dict[str, Any]:
    return {
        "step": w.step,
        "delivery": _delivery(w.delivery, f"{path}.delivery"),
        "waiter_id": w.waiter_id,
        "event_types": [type_name(t) for t in w.event_types],
        "requirements": [[key, value] for key, value in w.requirements],
        "deadline": w.deadline,
        "budget": w.budget,
    } | ({"sent": w.sent} if w.sent else {})


class _Reader:
    """Reads saved data with the JSON path of every value at hand for errors."""

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

    def delivery(self, data: Any, path: str) -> Delivery:
        error = data.get("last_error") if isinstance(data, dict) else None
        last_error = None
        if error is not None:
            last_error = SavedError(
                self.get(error, "type", str, f"{path}.last_error"),
                self.get(error, "message", str, f"{path}.last_error"),
            )
        first, started, failed = (
            _time(data, key, path)
            for key in ("first_failed_at", "first_started_at", "last_failed_at")
        )
        bound = None
        if isinstance(data, dict) and data.get("bound") is not None:
            bound = tuple(
                decode_event(ev, f"{path}.bound[{i}]")
                for i, ev in enumerate(self.get(data, "bound", list, path))
            )
        return Delivery(
            self.get(data, "event_id", int, path),
            decode_event(self.get(data, "event", dict, path), f"{path}.event"),
            self.get(data, "attempt", int, path),
            last_error,
            first,
            bound,
            started,
            failed,
        )

    def worker(self, data: Any, path: str) -> Worker:
        return Worker(
            self.step(self.get(data, "step", str, path), f"{path}.step"),
            self.delivery(self.get(data, "delivery", dict, path), f"{path}.delivery"),
            sent=_count(data.get("sent", 0), f"{path}.sent"),
        )


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContextSerdeError(f"{path} must be a number or null, not {type(value).__name__}")
    return float(value)


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
            queue = queue.push(r.delivery(item, f"{path}.queues.{name}[{i}]"))
        lanes[step] = Lane(queue, 0)
    executing = [
        r.worker(w, f"{path}.executing[{i}]")
        for i, w in enumerate(r.get(data, "executing", list, path))
    ]
    retrying = [
        r.worker(w, f"{path}.retrying[{i}]")
        for i, w in enumerate(r.get(data, "retrying", list, path))
    ]
    waiting = []
    for i, w in enumerate(r.get(data, "waiting", list, path)):
        where = f"{path}.waiting[{i}]"
        worker = r.worker(w, where)
        types = tuple(
            event_type(name, f"{where}.event_types[{j}]")
            for j, name in enumerate(r.get(w, "event_types", list, where))
        )
        requirements = tuple(
            (str(pair[0]), pair[1]) for pair in r.get(w, "requirements", list, where)
        )
        waiting.append(
            Waiter(
                worker.step,
                worker.delivery,
                r.get(w, "waiter_id", str, where),
                types,
                requirements,
                _number(w.get("deadline"), f"{where}.deadline"),
                _number(w.get("budget"), f"{where}.budget"),
                worker.sent,
            )
        )
    memos = {}
    for i, m in enumerate(r.get(data, "memos", list, path)):
        where = f"{path}.memos[{i}]"
        step = r.step(r.get(m, "step", str, where), f"{where}.step")
        answers = {
            key: decode_event(ev, f"{where}.answers.{key}")
            for key, ev in r.get(m, "answers", dict, where).items()
        }
        collected = {
            key: tuple(
                _read_collected(entry, f"{where}.collected.{key}[{j}]")
                for j, entry in enumerate(entries)
            )
            for key, entries in (m.get("collected") or {}).items()
        }
        memos[(step, r.get(m, "event_id", int, where))] = WaitMemo(
            {
                key: decode_event(ev, f"{where}.published.{key}")
                for key, ev in r.get(m, "published", dict, where).items()
            },
            answers,
            collected=collected,
            sent=_read_sent(m.get("sent"), f"{where}.sent"),
        )
    collections = {}
    for i, c in enumerate(r.get(data, "collections", list, path)):
        where = f"{path}.collections[{i}]"
        step = r.step(r.get(c, "step", str, where), f"{where}.step")
        events = [
            decode_event(ev, f"{where}.events[{j}]")
            for j, ev in enumerate(r.get(c, "events", list, where))
        ]
        collections[(step, r.get(c, "buffer", str, where))] = CollectBuffer.of(events)
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
        held = [
            decode_event(ev, f"{where}.events[{j}]")
            for j, ev in enumerate(r.get(item, "events", list, where))
        ]
        joins[step] = JoinBuffer.of(held, slots)
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
