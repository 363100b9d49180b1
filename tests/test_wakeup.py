"""The loop's own one-task wake-up (``_backends/_wakeup.py``) and the mailbox
built on it (``BasicRuntime``'s inbox and stream), on asyncio and on trio."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint

from anyflow._backends._wakeup import Wakeup
from anyflow.runtime._basic import _Mailbox

pytestmark = pytest.mark.anyio


async def test_a_waiting_task_runs_again_once_set() -> None:
    waiter = Wakeup.new()
    woken: list[str] = []

    async def wait() -> None:
        await waiter
        woken.append("woken")

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await wait_all_tasks_blocked()
        assert woken == []
        waiter.set()
        waiter.set()  # a second set changes nothing
    assert woken == ["woken"]


async def test_set_before_the_wait_returns_at_once() -> None:
    waiter = Wakeup.new()
    waiter.set()
    with anyio.fail_after(5):
        await waiter


async def test_a_cancelled_wait_ends_in_the_cancellation_and_a_later_set_does_nothing() -> None:
    waiter = Wakeup.new()
    with anyio.CancelScope() as scope:

        async def cancel_soon() -> None:
            await wait_all_tasks_blocked()
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_soon)
            await waiter
            pytest.fail("the wait went on after its cancellation")
    assert scope.cancelled_caught
    waiter.set()  # the task no longer waits: nothing to wake (a reschedule would wreck trio's)
    with anyio.fail_after(5):
        await checkpoint()
        again = Wakeup.new()
        again.set()
        await again


async def test_mailbox_hands_over_everything_put_while_its_reader_waited() -> None:
    box: _Mailbox[int] = _Mailbox()
    batches: list[list[int]] = []

    async def read() -> None:
        batches.append(await box.get_batch())
        batches.append(await box.get_batch())  # interrupted: nothing
        batches.append(await box.get_batch())  # closed: nothing

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await wait_all_tasks_blocked()
        box.put(1)
        box.put(2)
        await wait_all_tasks_blocked()
        box.interrupt()
        await wait_all_tasks_blocked()
        box.close()
    assert batches == [[1, 2], [], []]


async def test_mailbox_get_waits_for_each_item_then_ends_when_closed() -> None:
    box: _Mailbox[str] = _Mailbox()
    got: list[str | None] = []

    async def read() -> None:
        while (item := await box.get()) is not None:
            got.append(item)
        got.append(None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await wait_all_tasks_blocked()
        box.put("a")
        await wait_all_tasks_blocked()
        box.put("b")
        box.close()
    assert got == ["a", "b", None]
