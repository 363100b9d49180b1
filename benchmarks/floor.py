"""The floor: the workloads' message patterns on bare anyio memory object streams.

No engine is that cheap, but this shows how far anyflow is from what anyio
itself costs on this machine and backend:

* ``hop``: a ping-pong between two tasks, one round trip per hop.  A chain hop
  is the same two wake-ups (the worker hands its result to the control loop,
  the loop hands the next event back to a worker).
* ``checkpoint``: one task passing through the event loop n times
  (``anyio.lowlevel.checkpoint``): the least any hop that yields can cost.  A
  chain hop in which the worker hands the next delivery to itself (no control
  loop task in between) is one such pass, so this is its floor.
* ``stream``: one task puts n items on an unbounded stream and closes it,
  another iterates over it, as ``write_event_to_stream`` / ``stream_events`` do.
"""

from __future__ import annotations

import math
import time

import anyio
import anyio.lowlevel

from ._common import check

__all__ = ["checkpoint", "hop", "stream"]


async def hop(n: int) -> float:
    to_pong, pong_inbox = anyio.create_memory_object_stream[int](math.inf)
    to_ping, ping_inbox = anyio.create_memory_object_stream[int](math.inf)

    async def pong() -> None:
        async with pong_inbox, to_ping:
            async for i in pong_inbox:
                to_ping.send_nowait(i + 1)

    last = 0
    async with anyio.create_task_group() as task_group, ping_inbox:
        task_group.start_soon(pong)
        start = time.perf_counter()
        with to_pong:
            for _ in range(n):
                to_pong.send_nowait(last)
                last = await ping_inbox.receive()
        elapsed = time.perf_counter() - start
    check(last == n, f"ping-pong ended at {last}, not {n}")
    return elapsed


async def checkpoint(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await anyio.lowlevel.checkpoint()
    return time.perf_counter() - start


async def stream(n: int) -> float:
    send, receive = anyio.create_memory_object_stream[int](math.inf)

    async def produce() -> None:
        with send:
            for i in range(n):
                send.send_nowait(i)

    seen = 0
    start = time.perf_counter()
    async with anyio.create_task_group() as task_group, receive:
        task_group.start_soon(produce)
        async for i in receive:
            check(i == seen, f"item {i} arrived as number {seen}")
            seen += 1
    elapsed = time.perf_counter() - start
    check(seen == n, f"received {seen} of {n} items")
    return elapsed
