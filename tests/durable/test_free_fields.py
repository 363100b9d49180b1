"""Free fields (keywords an event class does not declare) in durable runs.

They are journaled with the event and come back from the journal as they
went in: after a runtime stops mid-run and another resumes it on the same
SQLite file, and after a process killed by SIGKILL is started again.  A free
value the journal could not record is refused in the sender, as a declared
one is.  A journal written before every event took free fields (when only
``StartEvent``, ``InputRequiredEvent`` and ``HumanResponseEvent`` did, and
wrote ``"_extra": {}`` when they had none) still loads and runs on.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.durable import DurableRuntime, SqliteStore
from anyflow.errors import ContextSerdeError

if TYPE_CHECKING:
    from pathlib import Path

CALLS: list[str] = []


class Quoted(Event):
    total: int


class Book(Workflow):
    """Quote, ask whether to book (waiting for the answer), book."""

    @step
    async def quote(self, ev: StartEvent) -> Quoted:
        CALLS.append("quote")
        return Quoted(total=sum(ev.items), currency=ev.currency, lines=len(ev.items))  # type: ignore[call-arg]

    @step
    async def confirm(self, ev: Quoted, ctx: Context) -> StopEvent:
        CALLS.append("confirm")
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="book?", quote=ev.total, currency=ev.currency),
        )
        return StopEvent(
            result=f"{answer.response}: {ev.total} {ev.currency}",
            lines=ev.lines,
            by=answer.by,
        )


class Legacy(Workflow):
    """A run as the code before free fields on every event could write it: the
    start event's free fields under "_extra", the question's "_extra" empty."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="book?")
        )
        return StopEvent(result=f"{ev.topic}: {answer.response}", by=answer.by)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


async def test_free_fields_come_back_from_the_journal_after_a_resume(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with SqliteStore(db) as store, DurableRuntime(store) as runtime:
        handler = Book().run(run_id="b1", runtime=runtime, items=[40, 60], currency="EUR")
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                break
    # The runtime's block ended with the run waiting: as if its process went away.
    assert CALLS == ["quote", "confirm"]

    async with SqliteStore(db) as store, DurableRuntime(store) as runtime:
        handler = Book().run(run_id="b1", runtime=runtime)  # resume from the file
        seen = []
        async for ev in handler.stream_events():
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes", by="ann"))
        assert await handler == "yes: 100 EUR"
        recorded = [stored.event for stored in await runtime.read_events("b1")]
    # quote's event was replayed from the journal (quote did not run again) with
    # its free fields, or confirm could not have read ev.currency and ev.lines.
    assert CALLS == ["quote", "confirm", "confirm"]
    question = InputRequiredEvent(prefix="book?", quote=100, currency="EUR")
    stop = StopEvent(result="yes: 100 EUR", lines=2, by="ann")
    assert seen == [question, stop]
    assert recorded == [question, stop]


async def test_a_free_value_the_journal_cannot_record_is_refused_in_the_sender(
    tmp_path: Path,
) -> None:
    async with SqliteStore(tmp_path / "runs.db") as store, DurableRuntime(store) as runtime:
        with pytest.raises(
            ContextSerdeError,
            match=r"cannot record the start event StartEvent: .*nan at \$\.fields\._extra\.rate",
        ):
            Book().run(run_id="b2", runtime=runtime, items=[1], currency="EUR", rate=float("nan"))
        assert await runtime.get_run("b2") is None
        handler = Book().run(run_id="b2", runtime=runtime, items=[1], currency="EUR")
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                with pytest.raises(
                    ContextSerdeError,
                    match=r"run 'b2' cannot record HumanResponseEvent: .*inf at "
                    r"\$\.event\.fields\._extra\.by",
                ):
                    handler.send_event(HumanResponseEvent(response="yes", by=float("inf")))
                await handler.send_event(HumanResponseEvent(response="yes", by="bo"))
        assert await handler == "yes: 1 EUR"


JOURNAL_BEFORE: dict[str, list[dict[str, Any]]] = json.loads(
    r"""
{
 "events": [
  {
   "record": "827ad0eb:{\"__anyflow_event__\":\"anyflow.events:InputRequiredEvent\",\"fields\":{\"_extra\":{},\"prefix\":\"book?\"}}",
   "run_id": "legacy",
   "seq": 0
  }
 ],
 "runs": [
  {
   "created_at": 1796669863.6255999,
   "fingerprint": "{\"catchers\":{},\"steps\":{\"ask\":{\"accepts\":[\"anyflow.events:StartEvent\"],\"num_workers\":1}},\"workflow\":\"tests.durable.test_free_fields:Legacy\"}",
   "lease_until": null,
   "outcome": null,
   "owner": null,
   "run_id": "legacy",
   "state": null,
   "status": "running",
   "updated_at": 1796669863.6587188,
   "workflow": "tests.durable.test_free_fields:Legacy"
  }
 ],
 "ticks": [
  {
   "record": "a54e937d:{\"tick\":\"RunStarted\",\"start_event\":{\"__anyflow_event__\":\"anyflow.events:StartEvent\",\"fields\":{\"_extra\":{\"topic\":\"owls\"}}},\"now\":1796669863.6483908}",
   "run_id": "legacy",
   "seq": 0
  },
  {
   "record": "26bda901:{\"tick\":\"WaitStarted\",\"worker_id\":0,\"waiter_id\":\"wait#1\",\"event_types\":[\"anyflow.events:HumanResponseEvent\"],\"requirements\":[],\"waiter_event\":{\"__anyflow_event__\":\"anyflow.events:InputRequiredEvent\",\"fields\":{\"_extra\":{},\"prefix\":\"book?\"}},\"timeout\":null,\"now\":1796669863.6578887}",
   "run_id": "legacy",
   "seq": 1
  }
 ]
}
"""
)
"""The tables of a SQLite journal of ``Legacy`` as the code before this change
wrote it (anyflow at 0ea2278), left waiting for its answer."""


async def test_a_journal_written_before_loads_and_its_run_finishes(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStore(path) as store:
        await store.ping()  # creates the schema
    with sqlite3.connect(path) as db:
        for table, records in JOURNAL_BEFORE.items():
            for record in records:
                names, marks = ", ".join(record), ", ".join("?" * len(record))
                db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", [*record.values()])
    async with SqliteStore(path) as store, DurableRuntime(store) as runtime:
        handler = Legacy().run(run_id="legacy", runtime=runtime)
        seen = []
        async for ev in handler.stream_events():
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes", by="ann"))
        assert await handler == "owls: yes"
    assert seen == [InputRequiredEvent(prefix="book?"), StopEvent(result="owls: yes", by="ann")]


SCRIPT = textwrap.dedent(
    '''
    """Quote and book an order on a SQLite file; --die-in kills the process."""
    from __future__ import annotations

    import argparse
    import json
    import os
    import signal

    import anyio

    from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
    from anyflow.durable import DurableRuntime, SqliteStore

    args = argparse.Namespace()


    class Quoted(Event):
        total: int


    class Order(Workflow):
        @step
        async def quote(self, ev: StartEvent) -> Quoted:
            print("quote", flush=True)
            return Quoted(total=sum(ev.items), currency=ev.currency, note={"rush": True})

        @step
        async def book(self, ev: Quoted) -> StopEvent:
            print("book", flush=True)
            if args.die_in == "book":
                os.kill(os.getpid(), signal.SIGKILL)
            return StopEvent(result=[ev.total, ev.currency, ev.note], booked=True)


    async def main() -> None:
        async with SqliteStore(args.db) as store, DurableRuntime(store) as runtime:
            handler = Order().run(run_id="o1", runtime=runtime, items=[40, 60], currency="EUR")
            async for ev in handler.stream_events():
                last = ev
            print(json.dumps([await handler, last.booked]))


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        for option in ("--db", "--backend", "--die-in"):
            parser.add_argument(option)
        parser.parse_args(namespace=args)
        anyio.run(main, backend=args.backend)
    '''
)


def run_script(tmp_path: Path, backend: str, die_in: str = "") -> subprocess.CompletedProcess[str]:
    script = tmp_path / "order.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable, str(script), "--db", str(tmp_path / "runs.db"),
        "--backend", backend, "--die-in", die_in,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_free_fields_survive_a_killed_process(tmp_path: Path, backend: str) -> None:
    first = run_script(tmp_path, backend, die_in="book")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert first.stdout.split() == ["quote", "book"]
    second = run_script(tmp_path, backend)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    # quote's result, free fields and all, was read back from the journal.
    assert lines[:-1] == ["book"]
    assert json.loads(lines[-1]) == [[100, "EUR", {"rush": True}], True]
