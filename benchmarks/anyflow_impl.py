"""The workloads written against anyflow.

Each mirrors ``incumbent_impl`` line for line (same events, same steps, same
checks) so that the only difference measured is the engine.  Every function
takes the workload size ``n``, returns the elapsed seconds of the timed part,
and raises ``BenchmarkError`` if the run's answer is wrong.  Workflow objects
are built before the clock starts: a workflow is built once and run many times
in real programs, so its construction is not part of a run's cost.
"""

from __future__ import annotations

import time

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step

from ._common import check, in_flight, peak_bytes_in_flight

__all__ = ["chain", "fanout", "runs", "runs_memory", "startup", "stream"]


class Hop(Event):
    i: int
    n: int


class Item(Event):
    i: int
    n: int


class Result(Event):
    value: int
    n: int


class Progress(Event):
    i: int


class ChainFlow(Workflow):
    """One step that returns the next event to itself: the cost of one hop."""

    @step
    async def hop(self, ev: StartEvent | Hop) -> Hop | StopEvent:
        if isinstance(ev, StartEvent):
            return Hop(i=1, n=ev.n)
        if ev.i >= ev.n:
            return StopEvent(result=ev.i)
        return Hop(i=ev.i + 1, n=ev.n)


class FanoutFlow(Workflow):
    """Scatter n events to 8 workers and gather them: routing, worker pools and
    ``collect_events`` at scale."""

    @step
    async def scatter(self, ev: StartEvent, ctx: Context) -> Item | None:
        n = ev.n  # read once: the loop measures send_event, not start-event field access
        for i in range(n):
            ctx.send_event(Item(i=i, n=n))
        return None

    @step(num_workers=8)
    async def work(self, ev: Item) -> Result:
        return Result(value=ev.i, n=ev.n)

    @step
    async def gather(self, ev: Result, ctx: Context) -> StopEvent | None:
        results = ctx.collect_events(ev, [Result] * ev.n)
        if results is None:
            return None
        return StopEvent(result=(len(results), sum(r.value for r in results)))


class StreamFlow(Workflow):
    """One step that writes n events to the caller's stream."""

    @step
    async def emit(self, ev: StartEvent, ctx: Context) -> StopEvent:
        n = ev.n
        for i in range(n):
            ctx.write_event_to_stream(Progress(i=i))
        return StopEvent(result=n)


class TrivialFlow(Workflow):
    """StartEvent -> StopEvent: what a run costs when the steps cost nothing."""

    @step
    async def only(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=1)


async def chain(n: int) -> float:
    wf = ChainFlow()
    start = time.perf_counter()
    result = await wf.run(n=n)
    elapsed = time.perf_counter() - start
    check(result == n, f"chain ended at hop {result!r}, not {n}")
    return elapsed


async def fanout(n: int) -> float:
    wf = FanoutFlow()
    start = time.perf_counter()
    result = await wf.run(n=n)
    elapsed = time.perf_counter() - start
    check(result == (n, n * (n - 1) // 2), f"fanout of {n} gathered {result!r}")
    return elapsed


async def stream(n: int) -> float:
    wf = StreamFlow()
    start = time.perf_counter()
    seen = 0
    async with wf.run(n=n) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, Progress):
                check(ev.i == seen, f"streamed event {ev.i} arrived as number {seen}")
                seen += 1
        result = await handler
    elapsed = time.perf_counter() - start
    check(seen == n and result == n, f"streamed {seen} of {n} events, result {result!r}")
    return elapsed


async def runs(n: int) -> float:
    wf = TrivialFlow()
    return await in_flight(n, wf.run, 1)


async def runs_memory(n: int) -> float:
    wf = TrivialFlow()
    return await peak_bytes_in_flight(n, wf.run, 1)


async def startup(n: int) -> float:
    wf = TrivialFlow()
    start = time.perf_counter()
    for _ in range(n):
        result = await wf.run()
        check(result == 1, f"a trivial run returned {result!r}")
    return time.perf_counter() - start
