"""Scenarios: one run, several processes of one application, one DBOS database.

Why: this is what DBOSRuntime is for, tested the way a new user would try it.
A worker process A starts an order-approval run (``tests.dbos.flows.Ask``:
a step returns an ``InputRequiredEvent``, another takes the
``HumanResponseEvent``) with a run id of its choice and waits for the result.
Another process B, here the test itself with its own ``DBOSRuntime`` (DBOS
is one per process), knows only the run id: it attaches, reads the run's
stream until the question, and sends the answer.

* A finishes with the answer B gave; B's handler gives the same result.
* B attaches before A has started the run (B knows the run id first): B's
  follower waits for the run to be recorded, then answers it as above.
* A is SIGKILLed while it waits for the answer.  B still finds the question
  in the run's record and sends the answer, with no process executing the
  run; a new process A' calls ``wf.run(run_id=R)`` and finishes the run with
  that answer, without asking again or repeating the step that asked.

The child processes are ``tests/dbos/_child.py``; the test waits for their
output lines and exit codes, never for time to pass.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from dbos import DBOS

from anyflow import HumanResponseEvent, InputRequiredEvent
from anyflow.dbos import DBOSRuntime
from tests.dbos import flows
from tests.dbos._child import APP

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pytest
    from anyio.abc import Process

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


class Child:
    """A running ``tests/dbos/_child.py``, read one JSON line at a time."""

    def __init__(self, process: Process, args: tuple[str, ...], stderr: Path) -> None:
        self.process = process
        self.args = args
        self._stderr = stderr
        assert process.stdout is not None
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self.seen: list[dict[str, Any]] = []

    async def line(self, key: str) -> Any:
        """The value of the next output line that has ``key``."""
        while True:
            try:
                raw = await self._stdout.receive_until(b"\n", 1 << 20)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                await self.process.wait()
                raise AssertionError(
                    f"the child ended before printing {key!r}\n{self.report()}"
                ) from None
            line = json.loads(raw)
            self.seen.append(line)
            if key in line:
                return line[key]

    def report(self) -> str:
        return (
            f"`python -m tests.dbos._child {' '.join(self.args)}` (pid {self.process.pid}, "
            f"exit code {self.process.returncode})\n--- stdout\n"
            + "".join(json.dumps(line) + "\n" for line in self.seen)
            + f"--- stderr\n{self._stderr.read_text()}"
        )


@contextlib.asynccontextmanager
async def child(tmp_path: Path, name: str, *args: str) -> AsyncIterator[Child]:
    """Start a child; on leaving, it is killed if it still runs."""
    stderr = tmp_path / f"{name}.stderr"
    command = [sys.executable, "-m", "tests.dbos._child", *args]
    with stderr.open("wb") as errors:
        process = await anyio.open_process(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
    async with process:
        try:
            yield Child(process, args, stderr)
        finally:
            if process.returncode is None:
                process.kill()


def read_ledger(path: Path) -> list[tuple[str, int]]:
    """(step, pid) of every step attempt, in order."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [(line["step"], line["pid"]) for line in lines]


def dbos_status(database_url: str, run_id: str) -> str | None:
    """The run's DBOS workflow status, read from outside the application."""
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=database_url)
    try:
        found = client.list_workflows(workflow_ids=[run_id])
    finally:
        client.destroy()
    return found[0].status if found else None


async def assert_finished(database_url: str, run_id: str, process: Child) -> None:
    """A run whose process returned its result is finished for every process
    (a follower waits for the DBOS workflow to finish)."""
    status = await anyio.to_thread.run_sync(dbos_status, database_url, run_id)
    assert status == "SUCCESS", (
        f"run {run_id!r} returned its result in a process that then exited, but its DBOS "
        f"workflow is {status}: followers in other processes wait for it forever\n"
        + process.report()
    )


async def answer(rt: DBOSRuntime, run_id: str, response: str) -> tuple[str, Any]:
    """What process B does: follow the run, answer its question; the question."""
    handler = rt.attach(flows.Ask(), run_id)
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            await handler.send_event(HumanResponseEvent(response=response))
            return event.prefix, handler
    raise AssertionError("the run ended without asking")


async def test_a_run_answered_from_another_process(database_url: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    args = ("--flow", "ask", "--db", database_url, "--run-id", "order-42")
    with anyio.fail_after(TIMEOUT):
        async with child(
            tmp_path, "a", "run", *args, "--ledger", str(ledger), "--start", '{"order": 42}'
        ) as a:
            assert await a.line("question") == "approve order 42?", a.report()
            async with DBOSRuntime(name=APP, database_url=database_url) as rt:
                question, handler = await answer(rt, "order-42", "approved")
                assert question == "approve order 42?"
                assert await handler == "order 42: approved"
            assert await a.line("result") == "order 42: approved", a.report()
            assert await a.process.wait() == 0, a.report()
        await assert_finished(database_url, "order-42", a)
    assert read_ledger(ledger) == [("ask", a.process.pid), ("decide", a.process.pid)]


async def test_a_run_answered_while_its_process_is_dead_finishes_in_a_new_one(
    database_url: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    args = ("--flow", "ask", "--db", database_url, "--run-id", "order-7")
    args += ("--ledger", str(ledger))
    with anyio.fail_after(TIMEOUT):
        async with child(tmp_path, "a", "run", *args, "--start", '{"order": 7}') as a:
            assert await a.line("question") == "approve order 7?", a.report()
            a.process.kill()
            assert await a.process.wait() == -signal.SIGKILL, a.report()

        # B answers a run that no process executes: the answer waits in DBOS.
        async with DBOSRuntime(name=APP, database_url=database_url) as rt:
            question, _ = await answer(rt, "order-7", "approved")
            assert question == "approve order 7?"

        # A': the same program, started again on the run id.
        async with child(tmp_path, "a2", "run", *args) as a2:
            assert await a2.line("result") == "order 7: approved", a2.report()
            assert await a2.process.wait() == 0, a2.report()
        # A' found the question in the record and did not ask again.
        assert [line for line in a2.seen if "question" in line] == [
            {"question": "approve order 7?"}
        ], a2.report()
        await assert_finished(database_url, "order-7", a2)

        # Any process can now read the result; nothing runs again.
        async with DBOSRuntime(name=APP, database_url=database_url) as rt:
            assert await rt.attach(flows.Ask(), "order-7") == "order 7: approved"
            assert await flows.Ask().run(run_id="order-7", runtime=rt) == "order 7: approved"
    assert read_ledger(ledger) == [("ask", a.process.pid), ("decide", a2.process.pid)]


async def test_a_follower_that_attaches_before_the_run_starts_waits_for_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A starts only once B's follower has looked for the run and found nothing.
    looked = anyio.Event()
    status = DBOS.get_workflow_status_async

    async def get_status(workflow_id: str) -> Any:
        found = await status(workflow_id)
        if workflow_id == "order-9" and found is None:
            looked.set()
        return found

    monkeypatch.setattr(DBOS, "get_workflow_status_async", get_status)
    args = ("--flow", "ask", "--db", database_url, "--run-id", "order-9")
    with anyio.fail_after(TIMEOUT):
        async with DBOSRuntime(
            name=APP, database_url=database_url, poll_interval=0.05, attach_timeout=TIMEOUT
        ) as rt:
            handler = rt.attach(flows.Ask(), "order-9")
            stream = handler.stream_events()
            await looked.wait()
            async with child(tmp_path, "a", "run", *args, "--start", '{"order": 9}') as a:
                async for event in stream:
                    if isinstance(event, InputRequiredEvent):
                        assert event.prefix == "approve order 9?"
                        await handler.send_event(HumanResponseEvent(response="approved"))
                        break
                assert await handler == "order 9: approved"
                assert await a.line("result") == "order 9: approved", a.report()
                assert await a.process.wait() == 0, a.report()
