"""A process that runs one durable workflow and can kill itself mid-run.

Why a separate process: the durable runtime promises that a run survives the
death of its process, and the only honest way to test that is to kill a real
process with SIGKILL (no ``finally``, no flush, no atexit) and run the same
script again.  ``tests/durable/test_crash_matrix.py`` drives this script:

    python -m tests.durable.crash_child --shape chain --backend trio \\
        --store sqlite:/tmp/runs.db --run-id r1 --ledger /tmp/ledger.jsonl \\
        --crash before_commit:3

Crash points (counted in this process only):

* ``before_commit:N``: the N-th ``Store.append`` that carries tick records
  kills the process before the records reach the store;
* ``after_commit:N``: the same call kills it right after the store committed
  them, so the commands of that batch never execute;
* ``in_step:N``: the N-th step invocation kills the process right after it
  wrote its ledger line (its external side effect), before it returns;
* ``none``: run to the end (a first run, or the resumption of a killed one).

Every step invocation appends one JSON line ``{pid, run_id, step, key,
attempt, began, t}`` to the ledger, fsynced, before it returns or raises: it
stands for a side effect outside the run (a payment, an email).  On success the last
line of stdout is ``{"result": ..., "appends": ..., "steps": ..., "questions":
..., "answers": ...}`` (the InputRequiredEvents seen on the stream, and the
answers sent).

The workflows live at module level, and the script re-imports itself as
``tests.durable.crash_child`` when run with ``-m``, so that its events are
named ``tests.durable.crash_child:...`` in the journal, in this process, in
the resuming one and in the test that decodes the journal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
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
    WaitTimeoutError,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from anyflow.durable import DurableRuntime, PostgresStore, SqliteStore, Store, StoreDecorator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyflow.durable import Owner

SHAPES: dict[str, type[Workflow]] = {}
"""The workflows by shape name (filled in below)."""

RESULTS: dict[str, Any] = {}
"""What each shape's run returns (the test compares against an uncrashed run too)."""

RETRY_DELAYS: dict[str, float] = {}
"""The retry delay of each shape's retrying step, for the test's timing check."""

FANOUT = 8


class _Probe:
    """This process's counters and the crash point."""

    point = "none"
    nth = 0
    ledger = ""
    appends = 0
    steps = 0
    questions = 0
    answers = 0

    @classmethod
    def kill(cls) -> None:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(70)  # not reached: a signal sent to oneself lands before kill() returns


def side_effect(ctx: Context, name: str, began: float | None = None) -> None:
    """The step's external effect: a ledger line, on disk before the step
    returns.  ``began`` is when a step that waited before its effect started."""
    now = time.time()
    line = {
        "pid": os.getpid(),
        "run_id": ctx.run_id,
        "step": name,
        "key": ctx.idempotency_key(),
        "attempt": ctx.retry_info().attempt,
        "began": now if began is None else began,
        "t": now,
    }
    fd = os.open(_Probe.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    _Probe.steps += 1
    if _Probe.point == "in_step" and _Probe.steps == _Probe.nth:
        _Probe.kill()


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


SHAPES["chain"] = Chain
RESULTS["chain"] = 12345


# fanout: one step sends FANOUT items to a 3-worker step; a collector sums them.


class Item(Event):
    n: int


class Squared(Event):
    value: int


class Fanout(Workflow):
    @step
    async def split(self, ev: StartEvent, ctx: Context) -> Item | None:
        for n in range(FANOUT):
            ctx.send_event(Item(n=n))
        side_effect(ctx, "split")
        return None

    @step(num_workers=3)
    async def square(self, ev: Item, ctx: Context) -> Squared:
        await anyio.lowlevel.checkpoint()  # let the three workers interleave
        side_effect(ctx, "square")
        return Squared(value=ev.n * ev.n)

    @step
    async def gather(self, ev: Squared, ctx: Context) -> StopEvent | None:
        done = ctx.collect_events(ev, [Squared] * FANOUT)
        side_effect(ctx, "gather")
        if done is None:
            return None
        return StopEvent(result=sum(e.value for e in done))


SHAPES["fanout"] = Fanout
RESULTS["fanout"] = sum(n * n for n in range(FANOUT))


# hitl: a step asks a question and waits; this process answers it.


class Approved(Event):
    answer: str


class Hitl(Workflow):
    @step
    async def prepare(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "prepare")
        return Link(value=7)

    @step
    async def ask(self, ev: Link, ctx: Context) -> Approved:
        began = time.time()
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix=f"ship order {ev.value}?"),
            waiter_id="approval",
        )
        side_effect(ctx, "ask", began)
        return Approved(answer=answer.response)

    @step
    async def ship(self, ev: Approved, ctx: Context) -> StopEvent:
        side_effect(ctx, "ship")
        return StopEvent(result=f"shipped: {ev.answer}")


SHAPES["hitl"] = Hitl
RESULTS["hitl"] = "shipped: yes"


# retry: a step fails its first two attempts.


class Flaky(Workflow):
    @step
    async def prepare(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "prepare")
        return Link(value=3)

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.2, maximum_attempts=4))
    async def call(self, ev: Link, ctx: Context) -> Link2:
        attempt = ctx.retry_info().attempt
        side_effect(ctx, "call")
        if attempt <= 2:
            raise ConnectionError(f"service unavailable (attempt {attempt})")
        return Link2(value=attempt)

    @step
    async def report(self, ev: Link2, ctx: Context) -> StopEvent:
        side_effect(ctx, "report")
        return StopEvent(result=f"ok after {ev.value} attempts")


SHAPES["retry"] = Flaky
RESULTS["retry"] = "ok after 3 attempts"
RETRY_DELAYS["retry"] = 0.2


# timer: durable deadlines: a retry 1.5 s later, then a wait that times out.


class Nudge(HumanResponseEvent):
    """Nobody sends it: the wait for it times out."""


class Patient(Workflow):
    @step
    async def prepare(self, ev: StartEvent, ctx: Context) -> Link:
        side_effect(ctx, "prepare")
        return Link(value=1)

    @step(retry_policy=ConstantDelayRetryPolicy(delay=1.5, maximum_attempts=2))
    async def wait(self, ev: Link, ctx: Context) -> StopEvent:
        began = time.time()
        attempt = ctx.retry_info().attempt
        if attempt == 1:
            side_effect(ctx, "wait")
            raise ConnectionError("not yet")
        try:
            await ctx.wait_for_event(Nudge, waiter_id="nudge", timeout=0.3)
        except WaitTimeoutError:
            outcome = "no nudge"
        else:
            outcome = "nudged"
        side_effect(ctx, "wait", began)
        return StopEvent(result=f"{outcome} on attempt {attempt}")


SHAPES["timer"] = Patient
RESULTS["timer"] = "no nudge on attempt 2"
RETRY_DELAYS["timer"] = 1.5


# The crash injection.


class CrashingStore(StoreDecorator):
    """Kills the process at the ``before_commit``/``after_commit`` crash point."""

    async def append(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        if not ticks:  # a lease renewal
            await self.inner.append(run_id, owner, ticks, events, state, now, lease_until)
            return
        _Probe.appends += 1
        hit = _Probe.appends == _Probe.nth
        if hit and _Probe.point == "before_commit":
            _Probe.kill()
        await self.inner.append(run_id, owner, ticks, events, state, now, lease_until)
        if hit and _Probe.point == "after_commit":
            _Probe.kill()


def open_store(spec: str) -> Store:
    """``sqlite:PATH`` or ``postgres:URL#SCHEMA``."""
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        return SqliteStore(where, durability="normal")
    if kind == "postgres":
        url, _, schema = where.rpartition("#")
        return PostgresStore(url, schema=schema, max_connections=2)
    raise SystemExit(f"unknown store {spec!r}: use sqlite:PATH or postgres:URL#SCHEMA")


async def run(shape: str, store_spec: str, run_id: str) -> Any:
    workflow = SHAPES[shape]()
    async with CrashingStore(open_store(store_spec)) as store, DurableRuntime(store) as runtime:
        handler = workflow.run(run_id=run_id, runtime=runtime)
        async for ev in handler.stream_events():
            # A resumed run's stream first replays the recorded events, and a
            # recovered wait does not ask again, so each process sees the
            # question once and answers it.  If the first process's answer
            # was committed before the crash, the second answer finds no wait:
            # it is kept unclaimed (harmless, the run completes), or refused
            # if the run has finished meanwhile (not observed so far).
            if isinstance(ev, InputRequiredEvent):
                _Probe.questions += 1
                try:
                    await handler.send_event(HumanResponseEvent(response="yes"))
                except WorkflowRuntimeError:
                    continue
                _Probe.answers += 1
        return await handler


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--store", required=True, help="sqlite:PATH or postgres:URL#SCHEMA")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--crash", default="none", help="none, or POINT:N")
    args = parser.parse_args(argv)
    if args.crash != "none":
        point, _, nth = args.crash.partition(":")
        if point not in ("before_commit", "after_commit", "in_step") or not nth.isdigit():
            parser.error(
                f"--crash {args.crash!r}: use before_commit:N, after_commit:N or in_step:N"
            )
        _Probe.point, _Probe.nth = point, int(nth)
    _Probe.ledger = args.ledger
    result = anyio.run(run, args.shape, args.store, args.run_id, backend=args.backend)
    summary = {
        "result": result,
        "appends": _Probe.appends,
        "steps": _Probe.steps,
        "questions": _Probe.questions,
        "answers": _Probe.answers,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    # Run as the importable module, so the events' names do not start with __main__.
    from tests.durable.crash_child import main as _main

    _main(sys.argv[1:])
