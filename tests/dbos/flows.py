"""Workflows that DBOSRuntime's crash and cross-process tests run in child
processes (``tests/dbos/_child.py``), importable as ``tests.dbos.flows`` so
that every process names them, and their events, alike.

Each step does an "external" side effect: one JSON line ``{"pid", "step",
"key", "attempt"}`` appended to the ledger file named by ``PROBE.ledger``,
flushed and fsynced before the step returns or raises, keyed by
``ctx.idempotency_key()``.  The ledger is how a test sees which step attempts
ran in which process.  ``PROBE`` also holds the crash point: the child kills
itself with SIGKILL inside the N-th step invocation of its process, right
after that step's ledger line (see ``_child.py`` for the other points).

Names kept stable for other tests: ``Chain``, ``FanOut``, ``Approval``,
``Flaky``, ``Ask``, ``FLOWS``, ``RESULTS``, ``ATTEMPTS``, ``side_effect``,
``PROBE``.
"""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING, Any

import anyio

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ATTEMPTS",
    "FLOWS",
    "PROBE",
    "RESULTS",
    "Approval",
    "Ask",
    "Chain",
    "FanOut",
    "Flaky",
    "kill_self",
    "side_effect",
]

ITEMS = 6
"""How many items the fan-out sends to its three workers."""


def kill_self() -> None:
    """Die now, as a power cut would: no ``finally``, no flush, no atexit."""
    os.kill(os.getpid(), signal.SIGKILL)
    os._exit(70)  # not reached: a signal sent to oneself lands before kill() returns


class _Probe:
    """This process's ledger, step counter and in-step crash point."""

    def __init__(self) -> None:
        self.ledger = ""
        self.kill_in_step = 0
        """Kill inside the N-th step invocation of this process (0: never)."""
        self.steps = 0
        self.on_step: Callable[[str], None] | None = None


PROBE = _Probe()


def side_effect(ctx: Context, name: str) -> None:
    """The step's effect outside the run: a ledger line, on disk before the
    step goes on."""
    line = {
        "pid": os.getpid(),
        "step": name,
        "key": ctx.idempotency_key(),
        "attempt": ctx.retry_info().attempt,
    }
    if PROBE.ledger:
        with open(PROBE.ledger, "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())
    PROBE.steps += 1
    if PROBE.steps == PROBE.kill_in_step:
        kill_self()


# chain: five steps in a row.


class Link(Event):
    value: int


class Link2(Event):
    value: int


class Link3(Event):
    value: int


class Link4(Event):
    value: int


class Chain(Workflow):
    @step
    async def s1(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "s1")
        return Link(value=1)

    @step
    async def s2(self, ev: Link, ctx: Context) -> Link2:
        side_effect(ctx, "s2")
        return Link2(value=ev.value * 10 + 2)

    @step
    async def s3(self, ev: Link2, ctx: Context) -> Link3:
        side_effect(ctx, "s3")
        return Link3(value=ev.value * 10 + 3)

    @step
    async def s4(self, ev: Link3, ctx: Context) -> Link4:
        side_effect(ctx, "s4")
        return Link4(value=ev.value * 10 + 4)

    @step
    async def s5(self, ev: Link4, ctx: Context) -> StopEvent:
        side_effect(ctx, "s5")
        return StopEvent(result=ev.value * 10 + 5)


# fan-out: one step sends ITEMS items to a 3-worker step; a collector sums them.


class Item(Event):
    n: int


class Squared(Event):
    value: int


class FanOut(Workflow):
    @step
    async def split(self, ev: StartEvent, ctx: Context) -> Item | None:
        side_effect(ctx, "split")
        for n in range(ITEMS):
            ctx.send_event(Item(n=n))
        return None

    @step(num_workers=3)
    async def square(self, ev: Item, ctx: Context) -> Squared:
        await anyio.lowlevel.checkpoint()  # let the three workers interleave
        side_effect(ctx, "square")
        return Squared(value=ev.n * ev.n)

    @step
    async def gather(self, ev: Squared, ctx: Context) -> StopEvent | None:
        done = ctx.collect_events(ev, [Squared] * ITEMS)
        side_effect(ctx, "gather")
        if done is None:
            return None
        return StopEvent(result=sum(e.value for e in done))


# human in the loop: a step waits for the answer to the question it publishes.


class Approved(Event):
    answer: str


class Approval(Workflow):
    @step
    async def prepare(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "prepare")
        return Link(value=7)

    @step
    async def ask(self, ev: Link, ctx: Context) -> Approved:
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix=f"ship order {ev.value}?"),
            waiter_id="approval",
        )
        side_effect(ctx, "ask")
        return Approved(answer=answer.response)

    @step
    async def ship(self, ev: Approved, ctx: Context) -> StopEvent:
        side_effect(ctx, "ship")
        return StopEvent(result=f"shipped: {ev.answer}")


# retries: a step fails its first attempt.


class Flaky(Workflow):
    @step
    async def prepare(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "prepare")
        return Link(value=3)

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.05, maximum_attempts=3))
    async def call(self, ev: Link, ctx: Context) -> Link2:
        attempt = ctx.retry_info().attempt
        side_effect(ctx, "call")
        if attempt == 1:
            raise ConnectionError("service unavailable (attempt 1)")
        return Link2(value=attempt)

    @step
    async def report(self, ev: Link2, ctx: Context) -> StopEvent:
        side_effect(ctx, "report")
        return StopEvent(result=f"ok after {ev.value} attempts")


# human in the loop, the incumbent's way: a step returns the question, another
# step takes the answer (the cross-process scenarios).


class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> InputRequiredEvent:
        side_effect(ctx, "ask")
        await ctx.store.set("order", ev.order)
        return InputRequiredEvent(prefix=f"approve order {ev.order}?")

    @step
    async def decide(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        side_effect(ctx, "decide")
        order = await ctx.store.get("order")
        return StopEvent(result=f"order {order}: {ev.response}")


FLOWS: dict[str, type[Workflow]] = {
    "chain": Chain,
    "fanout": FanOut,
    "approval": Approval,
    "flaky": Flaky,
    "ask": Ask,
}
"""The workflows by the name the child's ``--flow`` takes."""

RESULTS: dict[str, Any] = {
    "chain": 12345,
    "fanout": sum(n * n for n in range(ITEMS)),
    "approval": "shipped: yes",
    "flaky": "ok after 2 attempts",
}
"""What an uncrashed run of each workflow returns (answered "yes")."""

ATTEMPTS: dict[str, dict[str, int]] = {
    "chain": {"s1": 1, "s2": 1, "s3": 1, "s4": 1, "s5": 1},
    "fanout": {"split": 1, "square": ITEMS, "gather": ITEMS},
    "approval": {"prepare": 1, "ask": 1, "ship": 1},
    "flaky": {"prepare": 1, "call": 2, "report": 1},
}
"""The distinct step attempts (idempotency keys) of an uncrashed run, per step."""
