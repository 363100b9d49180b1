"""``WorkerThread`` (``_backends/_thread.py``, public as
``anyflow.runtime.threads``), the SQL stores' thread, on asyncio and on trio."""

from __future__ import annotations

import multiprocessing
import os
import threading

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from anyflow.runtime.threads import WorkerThread

pytestmark = pytest.mark.anyio


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


async def test_a_call_runs_in_the_thread_and_gives_back_what_it_returns_or_raises() -> None:
    worker = WorkerThread("anyflow test worker 1")
    here = threading.get_ident()
    assert await worker.run(threading.get_ident) != here
    with pytest.raises(ZeroDivisionError):
        await worker.run(lambda: 1 // 0)
    assert await worker.run(lambda: "after") == "after"  # the thread goes on
    worker.close()


async def test_calls_run_one_at_a_time_in_the_order_they_came() -> None:
    worker = WorkerThread("anyflow test worker 2")
    release = threading.Event()
    ran: list[int] = []

    def first() -> None:
        release.wait(5)
        ran.append(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run, first)
        await wait_all_tasks_blocked()
        for i in range(1, 4):
            tg.start_soon(worker.run, lambda i=i: ran.append(i))
            await wait_all_tasks_blocked()
        assert ran == []  # the first holds the thread
        release.set()
    assert ran == [0, 1, 2, 3]
    worker.close()


async def test_a_caller_cancelled_while_its_call_runs_waits_for_its_end() -> None:
    worker = WorkerThread("anyflow test worker 3")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def call() -> None:
        started.set()
        release.wait(5)
        ran.append("done")

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            await worker.run(call)
            ran.append("returned")  # what it returned is given
            await anyio.lowlevel.checkpoint()
            ran.append("not reached")  # cancelled at the next checkpoint
        ran.append("left")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, scope)
        await anyio.to_thread.run_sync(started.wait, 5)
        scope.cancel()
        await wait_all_tasks_blocked()
        assert ran == []  # still waiting for the call
        release.set()
    assert ran == ["done", "returned", "left"]
    worker.close()


async def test_a_caller_cancelled_before_it_hands_a_call_over_does_not() -> None:
    worker = WorkerThread("anyflow test worker 4")
    ran: list[str] = []
    with anyio.CancelScope() as scope:
        scope.cancel()
        await worker.run(lambda: ran.append("ran"))
    assert ran == []
    assert await worker.run(lambda: "next") == "next"
    worker.close()


async def test_the_thread_ends_at_close_or_when_idle_and_a_new_one_takes_the_next_call() -> None:
    name = "anyflow test worker 5"
    worker = WorkerThread(name)
    await worker.run(int)
    [thread] = _threads(name)
    worker.close()
    await anyio.to_thread.run_sync(thread.join, 5)
    assert not thread.is_alive()
    assert await worker.run(lambda: 5) == 5  # a new thread
    worker.close()

    eager = WorkerThread("anyflow test worker 6", idle=0.0)  # ends as soon as it is idle
    for i in range(20):
        assert await eager.run(lambda i=i: i) == i


def _in_child(worker: WorkerThread, backend: str) -> None:
    async def call() -> None:
        with anyio.fail_after(5):
            assert await worker.run(lambda: "child") == "child"

    anyio.run(call, backend=backend)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_forked_child_starts_a_thread_of_its_own(backend: str) -> None:
    worker = WorkerThread("anyflow test worker 7")

    async def call() -> None:
        await worker.run(int)  # the parent's thread runs, and waits for more

    anyio.run(call, backend=backend)
    child = multiprocessing.get_context("fork").Process(target=_in_child, args=(worker, backend))
    child.start()
    child.join(30)
    worker.close()
    assert child.exitcode == 0  # it did not wait for the parent's thread
