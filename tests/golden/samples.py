"""What the golden record tests write and read: a representative set of ticks,
outcomes and run states, and a way to compare what was read back.

The records in ``records.json`` were written once, by the codecs these tests
guard, from the objects below.  A change of codec must give the same text for
the same objects and read the same objects back from that text: journals and
saved contexts already on disk depend on it.  Never regenerate the file to
make a test pass; a format change is a new kind of record, read beside the old.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from anyflow import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    WorkflowTimedOutEvent,
)
from anyflow._core._pqueue import PQueue
from anyflow._core.state import (
    Broken,
    Cancelled,
    CollectBuffer,
    Completed,
    Delivery,
    Failed,
    JoinBuffer,
    Lane,
    Resumption,
    RunSpec,
    RunState,
    RunStatus,
    StepSpec,
    TimedOut,
    Waiter,
    WaitMemo,
    Worker,
)
from anyflow._core.ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)
from anyflow.serialization import SavedError


class Order(StartEvent):
    item: str
    amount: int


class Line(Event):
    n: int
    note: str = ""


class Part(Event):
    n: int
    tags: list[str] = attrs.field(factory=list)


class Shipped(StopEvent):
    lines: int


class Question(InputRequiredEvent):
    pass


_FAILURE = StepFailedEvent(
    step_name="work",
    input_event=Line(n=2),
    exception_type="ValueError",
    exception_message="no stock for 2",
    attempts=3,
)


def ticks() -> dict[str, Any]:
    """One of each tick, and each optional field both ways."""
    return {
        "run_started": RunStarted(Order(item="owl", amount=3), 0.5),
        "run_started_nested": RunStarted(
            Order(item="é ü 猫 \u2028", amount=-(2**53)), 1712345678.123456
        ),
        "run_resumed": RunResumed(3.0),
        "run_resumed_recovered": RunResumed(4.25, recovered=True),
        "event_sent": EventSent(Line(n=1), now=1.0),
        "event_sent_external_to_step": EventSent(
            Line(n=2, note="rush"), step="work", external=True, now=2.0
        ),
        "event_sent_by_worker": EventSent(Part(n=7, tags=["a", "b"]), now=2.5, worker_id=3),
        "event_sent_human": EventSent(HumanResponseEvent(response={"ok": [1, 2.5, None]}), now=3),
        "step_completed_none": StepCompleted(0, None, 1.5),
        "step_completed_event": StepCompleted(1, Part(n=1), 2.5),
        "step_completed_stop": StepCompleted(5, Shipped(lines=3, result="done"), 9.0),
        "step_failed_retry": StepFailed(2, ValueError("boom"), 1.0, 3.0),
        "step_failed_final": StepFailed(2, ValueError("no stock for 2"), None, 4.0, _FAILURE),
        "step_failed_saved": StepFailed(4, SavedError("KeyError", "'sku'"), 0.25, 4.5),
        "event_collected": EventCollected(3, "default", Part(n=2), (Part, Line), 5.0),
        "event_collected_one": EventCollected(3, "by-order", Line(n=9), (Line,)),
        "wait_started": WaitStarted(
            4,
            "wait#1",
            (HumanResponseEvent,),
            (("response", "yes"), ("n", 3)),
            Question(prefix="ship it?"),
            30.0,
            6.0,
        ),
        "wait_started_minimal": WaitStarted(6, "w", (HumanResponseEvent, Line)),
        "wait_abandoned": WaitAbandoned(4, 7.0),
        "cancel_requested": CancelRequested(8.0),
        "timer_run": TimerFired("run-timeout", 9.0),
        "timer_retry": TimerFired("retry-2", 9.5),
        "timer_wait": TimerFired("wait-4", 10.0),
        "timer_step": TimerFired("step-1", 10.5),
        "timer_saved": TimerFired("saved-0", 11.0),
    }


def outcomes() -> dict[str, Any]:
    return {
        "completed": Completed(StopEvent(result={"shipped": 5})),
        "completed_custom": Completed(Shipped(lines=2)),
        "completed_timed_out_event": Completed(
            WorkflowTimedOutEvent(timeout=5.0, active_steps=("ask",))
        ),
        "failed": Failed("work", ValueError("no stock"), 3),
        "failed_saved": Failed("ship", SavedError("mod.Boom", "it broke\nbadly"), 1),
        "timed_out": TimedOut(10.0, ("ask", "work")),
        "timed_out_none_active": TimedOut(0.5, ()),
        "broken": Broken("work", "work returned Part, which no step accepts"),
        "broken_no_step": Broken(None, "the journal is unreadable", error=OSError("disk")),
        "cancelled": Cancelled(),
    }


SPEC = RunSpec(
    steps={
        "start": StepSpec("start", (Order,)),
        "work": StepSpec("work", (Line,), num_workers=2, timeout=20.0),
        "gather": StepSpec("gather", (Part,)),
        "ask": StepSpec("ask", (Line,)),
        "rescue": StepSpec("rescue", (StepFailedEvent,)),
    },
    stop_types=(StopEvent,),
    timeout=60.0,
    catchers={"work": ("rescue", 2)},
)


JOIN_SPEC = RunSpec(
    steps={
        **SPEC.steps,
        "pair": StepSpec("pair", (Part, Line), slots=(Part, Line, Part)),
    },
    stop_types=(StopEvent,),
    timeout=60.0,
)
"""``SPEC`` and a join step, ``pair``, whose sets are two parts and a line."""


def _lanes(
    spec: RunSpec = SPEC, **queues: tuple[list[Delivery | Resumption], int]
) -> dict[str, Lane]:
    lanes = {name: Lane() for name in spec.steps}
    for name, (items, running) in queues.items():
        queue: PQueue[Delivery | Resumption] = PQueue()
        for item in items:
            queue = queue.push(item)
        lanes[name] = Lane(queue, running)
    return lanes


def states() -> dict[str, RunState]:
    """Run states with every part of the saved format in use."""
    first = Delivery(0, Order(item="owl", amount=3))
    retried = Delivery(2, Line(n=2), 2, ValueError("boom"), 3.0)
    saved_error = Delivery(3, Line(n=3, note="x"), 3, SavedError("KeyError", "'sku'"), 2)
    asked = Delivery(4, Line(n=4))
    woken = Resumption(7, Delivery(5, Line(n=5)), HumanResponseEvent(response="y"), sent=2)
    busy = RunState(
        SPEC,
        status=RunStatus.RUNNING,
        lanes=_lanes(work=([Delivery(6, Line(n=6)), woken], 2), gather=([], 1)),
        workers={
            3: Worker("work", retried, deadline=25.0, sent=1),
            4: Worker("work", Delivery(1, Line(n=1))),
            5: Worker("gather", Delivery(8, Part(n=1, tags=["t"]))),
        },
        waiting={
            6: Waiter(
                "ask",
                asked,
                "wait#1",
                (HumanResponseEvent, Line),
                (("response", "yes"),),
                40.0,
                12.5,
                sent=3,
            ),
            9: Waiter("ask", Delivery(9, Line(n=9)), "w2", (HumanResponseEvent,)),
        },
        memos={
            ("ask", 4): WaitMemo(
                published={"wait#1": Question(prefix="ship it?")},
                answers={"wait#0": HumanResponseEvent(response=1)},
                deadlines={"wait#1": 40.0},
                collected={"default": ((Part(n=1), None), (Part(n=2), (Part(n=1), Part(n=2))))},
                sent=(1, 2),
            ),
            ("work", 5): WaitMemo(sent=(1, 1)),
        },
        unclaimed=((Line(n=11), None), (HumanResponseEvent(response="late"), "ask")),
        recoveries={"rescue": 1},
        retries={"retry-8": Worker("work", saved_error, deadline=31.0)},
        collections={
            ("gather", "default"): CollectBuffer.of([Part(n=1), Part(n=3)]),
            ("gather", "empty"): CollectBuffer(),
        },
        next_event_id=12,
        next_worker_id=10,
        deadline=60.5,
    )
    pair = (Part(n=1), Line(n=2), Part(n=3, tags=["last"]))
    joined = RunState(
        JOIN_SPEC,
        status=RunStatus.RUNNING,
        lanes=_lanes(
            JOIN_SPEC,
            pair=(
                [
                    Delivery(20, Part(n=4), bound=(Part(n=5), Line(n=6), Part(n=4))),
                    Resumption(9, Delivery(21, Line(n=21)), Line(n=22), sent=1),
                    Resumption(10, Delivery(22, Line(n=23)), Line(n=24), timed_out=True),
                ],
                1,
            ),
        ),
        workers={
            11: Worker(
                "pair",
                Delivery(3, Part(n=3), 2, ValueError("half"), 1.0, pair, 0.5, 1.75),
                deadline=21.0,
            ),
        },
        waiting={
            12: Waiter(
                "ask",
                Delivery(23, Line(n=7), 2, SavedError("E", "m"), 3, None, 2.0, 3.5),
                "wait#0",
                (Line,),
                deadline=50.0,
                budget=7.5,
            ),
        },
        retries={
            "retry-4": Worker("pair", Delivery(4, Line(n=2), 3, KeyError("k"), 1, pair, 0, 6)),
        },
        joins={"pair": JoinBuffer.of([Part(n=8), Part(n=10)], JOIN_SPEC.steps["pair"].slots)},
        next_event_id=30,
        next_worker_id=13,
    )
    return {
        "joined": joined,
        "initial": RunState.initial(SPEC),
        "started": RunState(
            SPEC,
            status=RunStatus.RUNNING,
            lanes=_lanes(start=([], 1)),
            workers={0: Worker("start", first)},
            next_event_id=1,
            next_worker_id=1,
            deadline=60.5,
        ),
        "busy": busy,
        "finished": RunState(
            SPEC,
            status=RunStatus.COMPLETED,
            next_event_id=3,
            next_worker_id=3,
            outcome=Completed(StopEvent(result=1)),
        ),
    }


def _is_default(field: Any, value: Any) -> bool:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return default is not attrs.NOTHING and bool(value == default)


def describe(value: Any) -> Any:
    """``value`` as plain JSON data that two equal values share (and unequal
    ones, even 1 and 1.0, do not): what the tests compare decoded records by."""
    if isinstance(value, RunSpec):
        return "<spec>"
    if isinstance(value, PQueue):
        return {"PQueue": [describe(item) for item in value]}
    if isinstance(value, CollectBuffer):
        return {"CollectBuffer": [describe(item) for item in value.items()], "total": value.total}
    if isinstance(value, BaseException):
        return {"error": getattr(value, "type_name", type(value).__name__), "message": str(value)}
    if isinstance(value, type):
        return {"type": f"{value.__module__}:{value.__qualname__}"}
    if isinstance(value, Event):
        # Declared fields only: how an event keeps its free fields is the
        # event codec's business, not these records'.
        described = {
            f.name: describe(getattr(value, f.name))
            for f in attrs.fields(type(value))
            if f.name[0] != "_" and not _is_default(f, getattr(value, f.name))
        }
        return {"event": f"{type(value).__module__}:{type(value).__qualname__}", **described}
    if attrs.has(type(value)):
        # Fields left at their defaults are left out, so that a field added
        # later (with a default) does not change how older data is described.
        fields = {
            f.name: describe(getattr(value, f.name))
            for f in attrs.fields(type(value))
            if not _is_default(f, getattr(value, f.name))
        }
        return {type(value).__qualname__: fields}
    if isinstance(value, Mapping):
        return {"mapping": [[describe(k), describe(v)] for k, v in value.items()]}
    if isinstance(value, tuple | list):
        return {type(value).__name__: [describe(item) for item in value]}
    if isinstance(value, RunStatus):
        return {"RunStatus": value.value}
    if value is None or isinstance(value, str | bool):
        return value
    return {type(value).__name__: repr(value)}
