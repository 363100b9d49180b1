"""The store contract (``anyflow/durable/_store.py``), promise by promise,
checked against every store: the reference ``MemoryStore``, ``SqliteStore``
and ``PostgresStore`` must behave alike.  Store-specific promises (durability
levels, reopening a file, worker threads, several processes on one database)
follow at the end.

Times are plain numbers: the stores never read a clock, so leases expire
when a test says so, not by waiting.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING

import anyio
import pytest

from anyflow.durable._postgres import PostgresStore
from anyflow.durable._sqlite import SqliteStore
from anyflow.durable._store import Owner, RunRecord, StoreDecorator
from anyflow.errors import DurabilityError, LeaseLostError, RunLockedError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from anyflow.durable._store import Store, StoredRun

T0 = 1_700_000_000.25
LEASE = 30.0
# Two runtimes of two live processes of one host, and a second runtime of this process.
A = Owner("h", os.getpid(), "a")
B = Owner("h", os.getppid(), "b")
C = Owner("h", os.getpid(), "c")


@pytest.fixture
def dead_pid() -> int:
    """The pid of a child that has exited and been reaped: no such process."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    return child.pid


async def claim(
    store: Store, owner: Owner = A, now: float = T0, run_id: str = "r", workflow: str = "m:W"
) -> StoredRun:
    return await store.claim(run_id, workflow, "fp", owner, now, now + LEASE)


def locked(run_id: str, holder: Owner) -> str:
    return rf"^run {run_id!r} is being executed by {re.escape(str(holder))} \(its lease runs for"


def lost(run_id: str, owner: Owner, holder: Owner | None) -> str:
    held = "nobody" if holder is None else re.escape(str(holder))
    return rf"^run {run_id!r} is not leased to {re.escape(str(owner))} any more \(held by {held}\)"


def taken(kind: str, seq: int, run_id: str = "r") -> str:
    return rf"^{kind} {seq} of run {run_id!r} is recorded already: another process wrote this run"


# -- claim ----------------------------------------------------------------------


async def test_claim_creates_a_running_run_leased_to_the_owner(store: Store) -> None:
    run = await claim(store)
    record = RunRecord.from_row("r", "m:W", "running", T0, T0)
    assert run.created
    assert run.record == record
    assert (run.fingerprint, list(run.ticks), run.state, run.outcome, run.event_count) == (
        "fp",
        [],
        None,
        None,
        0,
    )
    assert await store.get_run("r") == record
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(store, B, T0 + 1)


async def test_claim_of_an_existing_run_reads_it_as_recorded(store: Store) -> None:
    await claim(store)
    await store.append("r", A, [(0, "t0"), (1, "t1")], [(0, "e0")], "s1", T0 + 5, T0 + 35)
    run = await store.claim("r", "other:Workflow", "other-fp", A, T0 + 9, T0 + 39)
    assert not run.created
    assert run.record == RunRecord.from_row("r", "m:W", "running", T0, T0 + 5)
    assert run.fingerprint == "fp"
    assert list(run.ticks) == [(0, "t0"), (1, "t1")]
    assert (run.state, run.outcome, run.event_count) == ("s1", None, 1)


async def test_times_and_texts_are_kept_exactly(store: Store) -> None:
    now = 1_712_345_678.123_456_7
    text = '{"note": "héllo ✓ 🎉", "n": 1}' + "x" * 100_000
    await store.claim("r", "m:W", "fp", A, now, now + LEASE)
    await store.append("r", A, [(0, text)], [(0, text)], text, now, now + LEASE)
    run = await store.claim("r", "m:W", "fp", A, now, now + LEASE)
    assert run.record == RunRecord.from_row("r", "m:W", "running", now, now)
    assert (list(run.ticks), run.state) == ([(0, text)], text)
    assert await store.read_events("r") == [(0, text)]


# -- the lease ------------------------------------------------------------------


async def test_a_live_process_of_this_host_keeps_its_lease(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(store, B, T0 + LEASE - 1)
    # Nothing changed: A still holds the run.
    await store.append("r", A, [(0, "t0")], [], None, T0 + 2, T0 + 2 + LEASE)


async def test_another_runtime_of_this_process_is_locked_out(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(store, C, T0 + 1)


async def test_the_locked_error_says_how_long_the_lease_runs(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(RunLockedError, match=r"its lease runs for another 20s\)"):
        await claim(store, B, T0 + LEASE - 20)


async def test_an_expired_lease_is_free_and_its_holder_loses_the_run(store: Store) -> None:
    await claim(store, A)
    run = await claim(store, B, T0 + LEASE + 1)
    assert not run.created
    with pytest.raises(LeaseLostError, match=lost("r", A, B)):
        await store.append("r", A, [(0, "t0")], [], None, T0 + LEASE + 2, T0 + 99)
    with pytest.raises(LeaseLostError, match=lost("r", A, B)):
        await store.finish("r", A, "completed", "o", [], T0 + LEASE + 2)


async def test_a_dead_process_of_this_host_loses_its_lease_at_once(
    store: Store, dead_pid: int
) -> None:
    await claim(store, Owner("h", dead_pid, "d"))
    run = await claim(store, B, T0 + 1)
    assert not run.created


async def test_a_dead_process_of_another_host_keeps_its_lease_until_it_expires(
    store: Store, dead_pid: int
) -> None:
    far = Owner("far", dead_pid, "d")
    await claim(store, far)
    # Its pid says nothing on this host: only the lease's expiry frees the run.
    with pytest.raises(RunLockedError, match=locked("r", far)):
        await claim(store, B, T0 + LEASE - 1)
    await claim(store, B, T0 + LEASE + 1)


async def test_the_holder_may_claim_its_run_again(store: Store) -> None:
    await claim(store, A)
    run = await claim(store, A, T0 + 1)
    assert not run.created
    with pytest.raises(RunLockedError):
        await claim(store, B, T0 + LEASE + 0.5)  # the lease was extended to T0 + 1 + LEASE


async def test_release_frees_the_run_and_keeps_it_resumable(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [], "s", T0 + 1, T0 + 1 + LEASE)
    await store.release("r", A)
    assert (await store.get_run("r")) == RunRecord.from_row("r", "m:W", "running", T0, T0 + 1)
    with pytest.raises(LeaseLostError, match=lost("r", A, None)):
        await store.append("r", A, [(1, "t1")], [], None, T0 + 2, T0 + 2 + LEASE)
    run = await claim(store, B, T0 + 2)
    assert (list(run.ticks), run.state) == ([(0, "t0")], "s")


async def test_release_by_someone_else_changes_nothing(store: Store) -> None:
    await claim(store, A)
    await store.release("r", B)
    await store.release("unknown", A)
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(store, B, T0 + 1)


# -- append ---------------------------------------------------------------------


async def test_append_adds_records_and_extends_the_lease(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [(0, "e0")], "s1", T0 + 1, T0 + 100)
    await store.append("r", A, [(1, "t1"), (2, "t2")], [(1, "e1")], None, T0 + 2, T0 + 100)
    assert await store.get_run("r") == RunRecord.from_row("r", "m:W", "running", T0, T0 + 2)
    with pytest.raises(RunLockedError):
        await claim(store, B, T0 + LEASE + 1)
    run = await claim(store, A, T0 + 3)
    assert list(run.ticks) == [(0, "t0"), (1, "t1"), (2, "t2")]
    assert (run.state, run.event_count) == ("s1", 2)


async def test_the_state_snapshot_is_replaced_only_when_given(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [], None, T0 + 1, T0 + 99)
    assert (await claim(store, A, T0 + 1)).state is None
    await store.append("r", A, [(1, "t1")], [], "s1", T0 + 2, T0 + 99)
    await store.append("r", A, [(2, "t2")], [], None, T0 + 3, T0 + 99)
    assert (await claim(store, A, T0 + 3)).state == "s1"
    await store.append("r", A, [], [], "s2", T0 + 4, T0 + 99)
    assert (await claim(store, A, T0 + 4)).state == "s2"


async def test_the_journal_comes_back_in_order(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(2, "t2"), (0, "t0")], [(1, "e1"), (0, "e0")], None, T0, T0 + 9)
    await store.append("r", A, [(1, "t1"), (10, "t10")], [], None, T0, T0 + 9)
    assert list((await claim(store, A)).ticks) == [(0, "t0"), (1, "t1"), (2, "t2"), (10, "t10")]
    assert await store.read_events("r") == [(0, "e0"), (1, "e1")]


@pytest.mark.parametrize(
    ("ticks", "events", "error"),
    [
        pytest.param([(2, "new"), (1, "again")], [(1, "e1")], taken("tick", 1), id="tick"),
        pytest.param([(2, "new")], [(1, "e1"), (0, "again")], taken("event", 0), id="event"),
    ],
)
async def test_append_with_a_recorded_number_writes_nothing(
    store: Store, ticks: list[tuple[int, str]], events: list[tuple[int, str]], error: str
) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0"), (1, "t1")], [(0, "e0")], "s1", T0 + 1, T0 + 1 + LEASE)
    with pytest.raises(LeaseLostError, match=error):
        await store.append("r", A, ticks, events, "s2", T0 + 2, T0 + 1000)
    run = await claim(store, C, T0 + 1 + LEASE + 1)  # the lease was not extended
    assert run.record == RunRecord.from_row("r", "m:W", "running", T0, T0 + 1)
    assert list(run.ticks) == [(0, "t0"), (1, "t1")]
    assert (run.state, run.event_count) == ("s1", 1)
    assert await store.read_events("r") == [(0, "e0")]


async def test_append_by_a_non_holder_writes_nothing(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(LeaseLostError, match=lost("r", B, A)):
        await store.append("r", B, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1000)
    with pytest.raises(LeaseLostError, match=lost("nope", A, None)):
        await store.append("nope", A, [(0, "t0")], [], "s", T0 + 1, T0 + 1000)
    run = await claim(store, A, T0 + 2)
    assert (list(run.ticks), run.state, run.event_count) == ([], None, 0)
    assert run.record.updated_at == run.record.created_at
    assert await store.get_run("nope") is None


# -- finish ---------------------------------------------------------------------


async def test_finish_records_the_outcome_and_works_once(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1 + LEASE)
    await store.finish("r", A, "completed", "out", [(1, "e1"), (2, "e2")], T0 + 2)
    assert await store.get_run("r") == RunRecord.from_row("r", "m:W", "completed", T0, T0 + 2)
    assert await store.read_events("r") == [(0, "e0"), (1, "e1"), (2, "e2")]
    with pytest.raises(LeaseLostError, match=lost("r", A, None)):
        await store.finish("r", A, "failed", "other", [(3, "e3")], T0 + 3)
    with pytest.raises(LeaseLostError, match=lost("r", A, None)):
        await store.append("r", A, [(1, "t1")], [], None, T0 + 3, T0 + 99)
    run = await claim(store, A, T0 + 4)
    assert run.record.status == "completed"
    assert (run.outcome, run.event_count, list(run.ticks)) == ("out", 3, [(0, "t0")])


async def test_finish_by_a_non_holder_writes_nothing(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(LeaseLostError, match=lost("r", B, A)):
        await store.finish("r", B, "completed", "out", [(0, "e0")], T0 + 1)
    assert await store.get_run("r") == RunRecord.from_row("r", "m:W", "running", T0, T0)
    assert await store.read_events("r") == []
    await store.finish("r", A, "failed", "out", [], T0 + 1)
    assert (await store.get_run("r")) == RunRecord.from_row("r", "m:W", "failed", T0, T0 + 1)


async def test_finish_with_a_recorded_event_number_writes_nothing(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [], [(0, "e0")], None, T0 + 1, T0 + 1 + LEASE)
    with pytest.raises(LeaseLostError, match=taken("event", 0)):
        await store.finish("r", A, "completed", "out", [(1, "e1"), (0, "again")], T0 + 2)
    assert await store.get_run("r") == RunRecord.from_row("r", "m:W", "running", T0, T0 + 1)
    assert await store.read_events("r") == [(0, "e0")]
    with pytest.raises(RunLockedError, match=locked("r", A)):  # still leased to A
        await claim(store, B, T0 + 2)


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "timed_out"])
async def test_a_finished_run_is_read_without_a_lease(store: Store, status: str) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1 + LEASE)
    await store.finish("r", A, status, "out", [(1, "e1")], T0 + 2)
    run = await claim(store, B, T0 + 3)
    assert not run.created
    assert run.record == RunRecord.from_row("r", "m:W", status, T0, T0 + 2)
    assert (list(run.ticks), run.state, run.outcome, run.event_count) == (
        [(0, "t0")],
        "s",
        "out",
        2,
    )
    # B read the run but holds no lease on it, and neither does anyone else.
    with pytest.raises(LeaseLostError, match=lost("r", B, None)):
        await store.append("r", B, [(1, "t1")], [], None, T0 + 4, T0 + 99)
    await claim(store, C, T0 + 4)


# -- create and append_and_finish: a run's first and last batch, each one write --


@pytest.fixture(params=["store", "decorated"])
def either(request: pytest.FixtureRequest, store: Store) -> Store:
    """The store, and the same behind a ``StoreDecorator`` (which takes the
    base class's two steps for ``create`` and ``append_and_finish``)."""
    return store if request.param == "store" else StoreDecorator(store)


async def test_create_records_a_new_run_with_its_first_batch(either: Store) -> None:
    await either.create("r", "m:W", "fp", A, [(0, "t0")], [(0, "e0")], "s", T0, T0 + LEASE)
    assert await either.get_run("r") == RunRecord.from_row("r", "m:W", "running", T0, T0)
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(either, B, T0 + 1)
    run = await claim(either, A, T0 + 1)
    assert not run.created
    assert (run.fingerprint, list(run.ticks), run.state, run.event_count) == (
        "fp",
        [(0, "t0")],
        "s",
        1,
    )
    await either.append("r", A, [(1, "t1")], [(1, "e1")], None, T0 + 2, T0 + 2 + LEASE)
    assert await either.read_events("r") == [(0, "e0"), (1, "e1")]


@pytest.mark.parametrize("status", ["running", "completed"])
async def test_create_of_a_recorded_run_writes_nothing(either: Store, status: str) -> None:
    await claim(either, B)
    await either.append("r", B, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1)
    if status == "completed":
        await either.finish("r", B, "completed", "out", [], T0 + 2)
    later = T0 + LEASE + 5  # a lease that has expired does not make the run new
    with pytest.raises(RunLockedError, match=r"^run 'r' was recorded by another caller"):
        await either.create("r", "m:W", "fp2", A, [(0, "x")], [(0, "y")], "z", later, later + 9)
    run = await claim(either, C, later + 1)  # nobody holds it: A did not keep a lease
    assert run.record.status == status
    assert (run.fingerprint, list(run.ticks), run.state) == ("fp", [(0, "t0")], "s")
    assert await either.read_events("r") == [(0, "e0")]


async def test_append_and_finish_records_the_last_batch_with_the_end(either: Store) -> None:
    await claim(either, A)
    await either.append("r", A, [(0, "t0")], [(0, "e0")], "s1", T0 + 1, T0 + 1 + LEASE)
    await either.append_and_finish(
        "r", A, [(1, "t1")], [(1, "e1"), (2, "e2")], "s2", "completed", "out", T0 + 2
    )
    assert await either.get_run("r") == RunRecord.from_row("r", "m:W", "completed", T0, T0 + 2)
    run = await claim(either, B, T0 + 3)  # finished: read without a lease
    assert (list(run.ticks), run.state, run.outcome, run.event_count) == (
        [(0, "t0"), (1, "t1")],
        "s2",
        "out",
        3,
    )
    with pytest.raises(LeaseLostError, match=lost("r", A, None)):
        await either.append_and_finish("r", A, [(2, "t2")], [], None, "failed", "o", T0 + 4)


async def test_append_and_finish_by_a_non_holder_writes_nothing(store: Store) -> None:
    await claim(store, A)
    with pytest.raises(LeaseLostError, match=lost("r", B, A)):
        await store.append_and_finish("r", B, [(0, "t0")], [(0, "e0")], "s", "completed", "o", T0)
    await store.append("r", A, [(0, "t0")], [], None, T0 + 1, T0 + 1 + LEASE)
    with pytest.raises(LeaseLostError, match=taken("tick", 0)):
        await store.append_and_finish("r", A, [(0, "again")], [], "s", "completed", "o", T0 + 2)
    run = await claim(store, A, T0 + 3)
    assert run.record.status == "running"
    assert (list(run.ticks), run.state, run.outcome, run.event_count) == (
        [(0, "t0")],
        None,
        None,
        0,
    )


# -- reading --------------------------------------------------------------------


async def test_read_events_after_and_limit(store: Store) -> None:
    await claim(store, A)
    events = [(seq, f"e{seq}") for seq in range(5)]
    await store.append("r", A, [], events, None, T0, T0 + LEASE)
    assert await store.read_events("r") == events
    assert await store.read_events("r", after=1) == events[2:]
    assert await store.read_events("r", limit=2) == events[:2]
    assert await store.read_events("r", after=1, limit=2) == events[2:4]
    assert await store.read_events("r", after=3, limit=10) == events[4:]
    assert await store.read_events("r", limit=0) == []
    assert await store.read_events("r", after=4) == []
    assert await store.read_events("unknown") == []


async def test_read_ticks_reads_the_journal_without_a_lease(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(1, "t1"), (0, "t0")], [], None, T0, T0 + LEASE)
    assert await store.read_ticks("r") == [(0, "t0"), (1, "t1")]
    assert await store.read_ticks("unknown") == []
    # Reading took nothing: A still writes, B still cannot claim.
    await store.append("r", A, [(2, "t2")], [], None, T0 + 1, T0 + 1 + LEASE)
    with pytest.raises(RunLockedError):
        await claim(store, B, T0 + 2)


async def test_get_run_of_an_unknown_run_is_none(store: Store) -> None:
    assert await store.get_run("unknown") is None
    await claim(store, A, run_id="known")
    assert await store.get_run("unknown") is None


async def test_list_runs_oldest_first_with_filters(store: Store) -> None:
    # Same creation times sort by run id, code point by code point ("B" < "_" < "a").
    made = [("b", "m:X", T0 + 1), ("a", "m:W", T0 + 1), ("_", "m:W", T0 + 1)]
    made += [("B", "m:X", T0 + 1), ("z", "m:W", T0), ("c", "m:W", T0 + 2)]
    for run_id, workflow, now in made:
        await claim(store, A, now, run_id=run_id, workflow=workflow)
    await store.finish("a", A, "completed", "o", [], T0 + 5)
    await store.finish("B", A, "failed", "o", [], T0 + 5)
    ids = [r.run_id for r in await store.list_runs()]
    assert ids == ["z", "B", "_", "a", "b", "c"]
    assert [r.run_id for r in await store.list_runs(workflow="m:X")] == ["B", "b"]
    assert [r.run_id for r in await store.list_runs(status="running")] == ["z", "_", "b", "c"]
    assert [r.run_id for r in await store.list_runs(workflow="m:W", status="completed")] == ["a"]
    assert await store.list_runs(workflow="m:Nope") == []
    listed = {r.run_id: r for r in await store.list_runs()}
    assert listed["a"] == RunRecord.from_row("a", "m:W", "completed", T0 + 1, T0 + 5)
    assert listed["a"] == await store.get_run("a")


async def test_an_empty_store_lists_nothing(store: Store) -> None:
    assert await store.list_runs() == []


# -- delete ---------------------------------------------------------------------


async def finished(store: Store, run_id: str = "r", status: str = "completed") -> None:
    """A run with a journal, events, a state snapshot and an outcome, finished."""
    await claim(store, A, run_id=run_id)
    await store.append(
        run_id, A, [(0, f"{run_id}-t0")], [(0, f"{run_id}-e0")], "s", T0 + 1, T0 + 1 + LEASE
    )
    await store.finish(run_id, A, status, f"{run_id}-out", [(1, f"{run_id}-e1")], T0 + 2)


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "timed_out"])
async def test_delete_removes_a_finished_run_and_all_its_records(store: Store, status: str) -> None:
    await finished(store, status=status)
    await claim(store, A, T0, run_id="other")
    assert await store.delete("r") is True
    assert await store.get_run("r") is None
    assert await store.read_events("r") == []
    assert await store.read_ticks("r") == []
    assert [r.run_id for r in await store.list_runs()] == ["other"]
    assert await store.list_runs(status=status) == []
    # The id is free: claiming it creates a new run, with nothing of the old one.
    run = await claim(store, B, T0 + 10)
    assert run.created
    assert run.record == RunRecord.from_row("r", "m:W", "running", T0 + 10, T0 + 10)
    assert (run.fingerprint, list(run.ticks), run.state, run.outcome, run.event_count) == (
        "fp",
        [],
        None,
        None,
        0,
    )
    await store.append("r", B, [(0, "new-t0")], [(0, "new-e0")], None, T0 + 11, T0 + 99)
    assert await store.read_ticks("r") == [(0, "new-t0")]
    assert await store.read_events("r") == [(0, "new-e0")]


async def test_delete_of_an_unknown_run_is_false(store: Store) -> None:
    assert await store.delete("unknown") is False
    await finished(store)
    assert await store.delete("r") is True
    assert await store.delete("r") is False


async def test_delete_of_an_unfinished_run_raises_and_deletes_nothing(store: Store) -> None:
    await claim(store, A)
    await store.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1 + LEASE)
    await claim(store, A, run_id="idle")
    await store.release("idle", A)  # nobody executes it, but it stays resumable
    for run_id in ("r", "idle"):
        with pytest.raises(
            DurabilityError,
            match=rf"^run {run_id!r} is unfinished \(status 'running'\) and cannot be deleted: "
            r".* cancel it first",
        ):
            await store.delete(run_id)
    assert await store.get_run("r") == RunRecord.from_row("r", "m:W", "running", T0, T0 + 1)
    assert await store.read_ticks("r") == [(0, "t0")]
    assert await store.read_events("r") == [(0, "e0")]
    assert [r.run_id for r in await store.list_runs()] == ["idle", "r"]
    # A still holds the run and writes on; once it has finished, it can be deleted.
    with pytest.raises(RunLockedError, match=locked("r", A)):
        await claim(store, B, T0 + 2)
    await store.append("r", A, [(1, "t1")], [], None, T0 + 2, T0 + 2 + LEASE)
    await store.finish("r", A, "cancelled", "out", [(1, "e1")], T0 + 3)
    assert await store.delete("r") is True
    assert (await claim(store, B, T0 + 4, run_id="idle")).state is None


async def test_delete_leaves_other_runs_intact(store: Store) -> None:
    await finished(store, "gone")
    await finished(store, "kept", "failed")
    await claim(store, A, T0, run_id="live")
    await store.append("live", A, [(0, "live-t0")], [(0, "live-e0")], "ls", T0 + 1, T0 + 99)
    assert await store.delete("gone") is True
    assert [r.run_id for r in await store.list_runs()] == ["kept", "live"]
    assert await store.get_run("kept") == RunRecord.from_row("kept", "m:W", "failed", T0, T0 + 2)
    assert await store.read_ticks("kept") == [(0, "kept-t0")]
    assert await store.read_events("kept") == [(0, "kept-e0"), (1, "kept-e1")]
    kept = await claim(store, B, T0 + 3, run_id="kept")
    assert (kept.state, kept.outcome, kept.event_count) == ("s", "kept-out", 2)
    assert await store.read_ticks("live") == [(0, "live-t0")]
    assert await store.read_events("live") == [(0, "live-e0")]
    live = await claim(store, A, T0 + 3, run_id="live")
    assert (live.state, list(live.ticks), live.event_count) == ("ls", [(0, "live-t0")], 1)


# -- SQLite ---------------------------------------------------------------------


def test_sqlite_durability_must_be_a_known_level(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"^durability='fsync' is not a durability level of SqliteStore: "
        r"choose one of 'full', 'normal', 'off'$",
    ):
        SqliteStore(tmp_path / "runs.db", durability="fsync")


@pytest.fixture
def sqlite_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[sqlite3.Connection, set[int]]]:
    """Every connection SQLite opens from now on, with the threads that ran its statements."""
    opened: list[tuple[sqlite3.Connection, set[int]]] = []
    connect = sqlite3.connect

    def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        threads = {threading.get_ident()}
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(lambda _: threads.add(threading.get_ident()))
        opened.append((conn, threads))
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return opened


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1), ("off", 0)])
async def test_sqlite_uses_wal_and_the_durability_level(
    tmp_path: Path,
    sqlite_connections: list[tuple[sqlite3.Connection, set[int]]],
    durability: str,
    synchronous: int,
) -> None:
    async with SqliteStore(tmp_path / "runs.db", durability=durability) as store:
        await claim(store)
        [(conn, _)] = sqlite_connections
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (synchronous,)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


async def test_sqlite_never_runs_on_the_event_loop_thread(
    tmp_path: Path, sqlite_connections: list[tuple[sqlite3.Connection, set[int]]]
) -> None:
    loop_thread = threading.get_ident()
    async with SqliteStore(tmp_path / "runs.db") as store:
        await claim(store)
        await store.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0, T0 + LEASE)
        await store.read_events("r")
        await store.get_run("r")
        await store.list_runs()
        await store.release("r", A)
        await claim(store)
        await store.finish("r", A, "completed", "o", [], T0)
    [(_, threads)] = sqlite_connections
    assert threads
    assert loop_thread not in threads


async def test_sqlite_runs_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStore(path) as store:
        await claim(store)
        await store.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1 + LEASE)
        await claim(store, A, T0, run_id="done")
        await store.finish("done", A, "completed", "o", [(0, "e")], T0 + 2)
    async with SqliteStore(str(path), durability="normal") as store:
        assert [r.run_id for r in await store.list_runs()] == ["done", "r"]
        with pytest.raises(RunLockedError, match=locked("r", A)):
            await claim(store, B, T0 + 2)
        run = await claim(store, A, T0 + 2)
        assert (list(run.ticks), run.state, run.event_count) == ([(0, "t0")], "s", 1)
        assert (await claim(store, B, T0 + 3, run_id="done")).outcome == "o"


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    async with SqliteStore(path) as store:
        with pytest.raises(
            DurabilityError, match=r"has schema version 99, newer than .* 1: upgrade anyflow"
        ):
            await store.list_runs()


async def test_sqlite_does_not_make_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "runs.db"
    async with SqliteStore(path) as store:
        with pytest.raises(
            FileNotFoundError,
            match=rf"^cannot open the SQLite store {re.escape(repr(str(path)))}: its directory .* does not exist",
        ):
            await store.list_runs()
    assert not path.parent.exists()


async def test_sqlite_waits_to_switch_a_new_file_to_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Switching a file to WAL needs it to itself, and when another connection
    # is about to write, SQLite fails at once instead of waiting for
    # busy_timeout: as when two processes open a new file together.
    path = tmp_path / "runs.db"
    writer = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    retrying = threading.Event()
    attempts: list[str] = []
    connect = sqlite3.connect

    def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        def trace(statement: str) -> None:
            if statement.startswith("PRAGMA journal_mode"):
                attempts.append(statement)
                if len(attempts) == 2:
                    retrying.set()

        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)

    async def let_it_switch() -> None:
        assert await anyio.to_thread.run_sync(retrying.wait, 10, abandon_on_cancel=True)
        await anyio.to_thread.run_sync(writer.execute, "COMMIT")

    try:
        async with SqliteStore(path) as store, anyio.create_task_group() as tg:
            tg.start_soon(let_it_switch)
            await claim(store)
            assert await store.get_run("r") is not None
    finally:
        writer.close()
    assert len(attempts) >= 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_sqlite_is_not_used_after_aclose(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    await claim(store)
    await store.aclose()
    with pytest.raises(RuntimeError, match=r"^SqliteStore\(.*\) is closed$"):
        await store.get_run("r")


# -- several processes on one database (SQLite, PostgreSQL) ----------------------


async def opened(*stores: Store) -> None:
    """Open the stores' connections, so that a race that follows is not
    decided by which store connected first."""
    for store in stores:
        await store.list_runs()


async def test_several_processes_can_open_a_new_database_at_once(
    shared_stores: Callable[[], Store],
) -> None:
    stores = [shared_stores() for _ in range(8)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(opened, store)
        await claim(stores[0])
        assert [await store.get_run("r") for store in stores] == [
            RunRecord.from_row("r", "m:W", "running", T0, T0)
        ] * len(stores)
    finally:
        for store in stores:
            await store.aclose()


async def test_one_of_two_processes_racing_to_claim_a_run_wins(
    shared_stores: Callable[[], Store],
) -> None:
    runs = [f"r{i}" for i in range(20)]
    outcomes: dict[str, list[str]] = {run_id: [] for run_id in runs}

    async def race(store: Store, owner: Owner, run_id: str) -> None:
        try:
            await claim(store, owner, run_id=run_id)
        except RunLockedError:
            outcomes[run_id].append("locked")
        else:
            outcomes[run_id].append(f"won by {owner.token}")

    async with shared_stores() as first, shared_stores() as second:
        await opened(first, second)
        async with anyio.create_task_group() as tg:
            for run_id in runs:
                tg.start_soon(race, first, A, run_id)
                tg.start_soon(race, second, B, run_id)
        for run_id in runs:
            assert sorted(outcomes[run_id]) in (["locked", "won by a"], ["locked", "won by b"])
            winner = A if "won by a" in outcomes[run_id] else B
            loser = B if winner is A else A
            with pytest.raises(RunLockedError, match=locked(run_id, winner)):
                await claim(first, loser, T0 + 1, run_id=run_id)
            assert not (await claim(second, winner, T0 + 1, run_id=run_id)).created


async def test_one_of_two_processes_racing_to_take_over_an_expired_lease_wins(
    shared_stores: Callable[[], Store], dead_pid: int
) -> None:
    runs = [f"r{i}" for i in range(20)]
    winners: dict[str, list[Owner]] = {run_id: [] for run_id in runs}
    later = T0 + LEASE + 1

    async def race(store: Store, owner: Owner, run_id: str) -> None:
        with contextlib.suppress(RunLockedError):
            await claim(store, owner, later, run_id=run_id)
            winners[run_id].append(owner)

    async with shared_stores() as first, shared_stores() as second:
        await opened(first, second)
        for run_id in runs:
            await claim(first, Owner("far", dead_pid, "gone"), run_id=run_id)
        async with anyio.create_task_group() as tg:
            for run_id in runs:
                tg.start_soon(race, first, A, run_id)
                tg.start_soon(race, second, B, run_id)
        assert all(len(won) == 1 for won in winners.values()), winners


async def test_a_process_sees_what_another_wrote_and_loses_a_taken_run(
    shared_stores: Callable[[], Store],
) -> None:
    async with shared_stores() as first, shared_stores() as second:
        await claim(first, A)
        await first.append("r", A, [(0, "t0")], [(0, "e0")], "s", T0 + 1, T0 + 1 + LEASE)
        with pytest.raises(RunLockedError, match=locked("r", A)):
            await claim(second, B, T0 + 2)
        run = await claim(second, B, T0 + 2 + LEASE)
        assert (list(run.ticks), run.state, run.event_count) == ([(0, "t0")], "s", 1)
        with pytest.raises(LeaseLostError, match=lost("r", A, B)):
            await first.append("r", A, [(1, "t1")], [], None, T0 + 3 + LEASE, T0 + 99)
        await second.finish("r", B, "completed", "o", [(1, "e1")], T0 + 3 + LEASE)
        assert await first.read_events("r") == [(0, "e0"), (1, "e1")]


async def test_a_run_deleted_while_another_process_claims_it_is_gone_or_new(
    shared_stores: Callable[[], Store],
) -> None:
    # The claim either reads the finished run before the delete (which then
    # removes it) or creates a new run after it; never anything in between.
    runs = [f"r{i}" for i in range(20)]
    claimed: dict[str, StoredRun] = {}
    deleted: dict[str, bool] = {}

    async def purge(store: Store, run_id: str) -> None:
        deleted[run_id] = await store.delete(run_id)

    async def take(store: Store, run_id: str) -> None:
        claimed[run_id] = await claim(store, B, T0 + 10, run_id=run_id)

    async with shared_stores() as first, shared_stores() as second:
        await opened(first, second)
        for run_id in runs:
            await finished(first, run_id)
        async with anyio.create_task_group() as tg:
            for run_id in runs:
                tg.start_soon(purge, first, run_id)
                tg.start_soon(take, second, run_id)
        for run_id in runs:
            assert deleted[run_id]
            run, now = claimed[run_id], await first.get_run(run_id)
            if run.created:
                assert now == RunRecord.from_row(run_id, "m:W", "running", T0 + 10, T0 + 10)
                assert await first.read_ticks(run_id) == []
                assert await first.read_events(run_id) == []
            else:
                assert (run.record.status, run.outcome, run.event_count) == (
                    "completed",
                    f"{run_id}-out",
                    2,
                )
                assert list(run.ticks) == [(0, f"{run_id}-t0")]
                assert now is None


# -- PostgreSQL -----------------------------------------------------------------


def test_postgres_store_says_how_to_install_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'anyflow\[postgres\]'$"):
        PostgresStore("postgresql://nowhere/db")


@pytest.fixture
def two_schemas(postgres_url: str) -> Iterator[list[str]]:
    import psycopg
    from psycopg import sql

    schemas = [f"anyflow_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    yield schemas
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def test_postgres_schemas_keep_runs_apart(postgres_url: str, two_schemas: list[str]) -> None:
    one = PostgresStore(postgres_url, schema=two_schemas[0])
    two = PostgresStore(postgres_url, schema=two_schemas[1], max_connections=1)
    async with one, two:
        await claim(one, A)
        assert await two.get_run("r") is None
        assert (await claim(two, B)).created
        assert [r.run_id for r in await one.list_runs()] == ["r"]


async def test_postgres_claim_creates_a_run_deleted_while_it_waited_for_the_lock(
    postgres_url: str, two_schemas: list[str]
) -> None:
    # A claim finds the finished run (its insert does nothing) and waits for
    # the row lock that a delete holds; the delete commits, and the row the
    # claim waited for is gone: the claim creates the run after all.
    import psycopg
    from psycopg import sql

    def connect(autocommit: bool) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(postgres_url, autocommit=autocommit)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(two_schemas[0])))
        return conn

    async with PostgresStore(postgres_url, schema=two_schemas[0]) as store:
        await finished(store)
        deleter = await anyio.to_thread.run_sync(connect, False)
        watcher = await anyio.to_thread.run_sync(connect, True)
        claimed: list[StoredRun] = []

        async def take() -> None:
            claimed.append(await claim(store, B, T0 + 10))

        def wait_until_the_claim_waits_for_the_deleter() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (deleter.info.backend_pid,),
                ).fetchone()
                if row is not None and row[0] == 1:
                    return
                time.sleep(0.01)
            raise AssertionError("the claim never waited for the deleter's row lock")

        try:
            await anyio.to_thread.run_sync(
                deleter.execute, "SELECT status FROM runs WHERE run_id = 'r' FOR UPDATE"
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(take)
                await anyio.to_thread.run_sync(wait_until_the_claim_waits_for_the_deleter)
                for table in ("ticks", "events", "runs"):
                    await anyio.to_thread.run_sync(
                        deleter.execute, f"DELETE FROM {table} WHERE run_id = 'r'"
                    )
                await anyio.to_thread.run_sync(deleter.commit)
        finally:
            await anyio.to_thread.run_sync(deleter.close)
            await anyio.to_thread.run_sync(watcher.close)
        [run] = claimed
        assert run.created
        assert await store.get_run("r") == RunRecord.from_row(
            "r", "m:W", "running", T0 + 10, T0 + 10
        )
        assert await store.read_ticks("r") == []
