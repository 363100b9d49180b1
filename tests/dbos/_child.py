"""A process of an application that runs its workflows with DBOSRuntime, and
can die mid-run.

Why a separate process: DBOSRuntime promises that a run survives the death of
its process and can be resumed, followed and answered from another one; the
only honest test of that kills a real process with SIGKILL (no ``finally``,
no flush, no atexit) and starts another.  ``test_crash.py`` and
``test_cross_process.py`` drive this script:

    python -m tests.dbos._child run --flow chain --db sqlite:///x.db \\
        --run-id r1 --ledger /tmp/ledger.jsonl --crash in_step:3

Commands:

* ``run``: ``wf.run(run_id=..., runtime=rt)``: starts the run, or takes an
  unfinished one over and resumes it;
* ``follow``: ``rt.attach(wf, run_id)`` only: this process executes the run
  only if DBOS hands it over (``--executor-id`` of a dead process recovers
  that one's runs at launch);
* ``answer``: attaches, waits for the question, sends the answer, and waits
  for the run's result.

Crash points (``--crash``, counted in this process only):

* ``in_step:N``: inside the N-th step invocation, right after its ledger line;
* ``after_step:N``: right after the run recorded the N-th step result
  (completion or failure), before that batch's commands execute;
* ``asked``: when the question reaches this process's stream, unanswered;
* ``none``: run to the end.

Every step attempt appends its ledger line (``tests/dbos/flows.py``).  Output,
one JSON object per stdout line, flushed: ``{"question": prefix}`` when an
InputRequiredEvent reaches the stream, ``{"answered": response}`` once an
answer was sent, and last ``{"result": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import anyio

from anyflow import HumanResponseEvent, InputRequiredEvent, WorkflowRuntimeError
from anyflow._core.ticks import StepCompleted, StepFailed
from anyflow.dbos import DBOSRuntime
from anyflow.runtime import BasicRuntime, InternalRunAdapterDecorator, RuntimeDecorator
from tests.dbos import flows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyflow._core.commands import Command
    from anyflow._core.ticks import Tick
    from anyflow.handler import WorkflowHandler
    from anyflow.runtime import ExternalRunAdapter, InternalRunAdapter

APP = "anyflow-dbos-tests"


def say(**line: Any) -> None:
    print(json.dumps(line), flush=True)


class _KillAfterResults(InternalRunAdapterDecorator):
    """Kills the process once the run recorded its N-th step result.

    DBOSRuntime calls its inner adapter's ``on_ticks`` after it recorded the
    batch, so here the batch is in DBOS and none of its commands ran."""

    seen = 0

    def __init__(self, inner: InternalRunAdapter, nth: int) -> None:
        super().__init__(inner)
        self._nth = nth

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self.inner.on_ticks(ticks, commands)
        for tick in ticks:
            if type(tick) in (StepCompleted, StepFailed):
                _KillAfterResults.seen += 1
                if _KillAfterResults.seen == self._nth:
                    flows.kill_self()


class KillAfterResults(RuntimeDecorator):
    def __init__(self, nth: int) -> None:
        super().__init__(BasicRuntime())
        self._nth = nth

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        return _KillAfterResults(internal, self._nth), external


async def converse(handler: WorkflowHandler, answer: str | None, crash: str) -> None:
    """Read the run's stream to its end, answering its question."""
    async for event in handler.stream_events():
        if not isinstance(event, InputRequiredEvent):
            continue
        say(question=event.prefix)
        if crash == "asked":
            flows.kill_self()
        if answer is None:
            continue
        # A resumed stream replays a question asked before the crash; if its
        # answer was recorded then, this one is kept unclaimed, or refused if
        # the run has finished meanwhile.
        try:
            await handler.send_event(HumanResponseEvent(response=answer))
        except WorkflowRuntimeError:
            continue
        say(answered=answer)


async def main_async(args: argparse.Namespace) -> Any:
    point, _, nth = args.crash.partition(":")
    inner = KillAfterResults(int(nth)) if point == "after_step" else None
    workflow = flows.FLOWS[args.flow]()
    start: dict[str, Any] = json.loads(args.start)
    async with DBOSRuntime(
        name=APP,
        database_url=args.db,
        executor_id=args.executor_id,
        workflows=[workflow],
        poll_interval=0.05,
        inner=inner,
    ) as rt:
        if args.command == "run":
            handler = workflow.run(run_id=args.run_id, runtime=rt, **start)
            await converse(handler, args.answer, args.crash)
        elif args.command == "follow":
            handler = rt.attach(workflow, args.run_id)
            await converse(handler, args.answer, args.crash)
        else:
            handler = rt.attach(workflow, args.run_id)
            async for event in handler.stream_events():
                if isinstance(event, InputRequiredEvent):
                    say(question=event.prefix)
                    await handler.send_event(HumanResponseEvent(response=args.answer))
                    say(answered=args.answer)
                    break
        return await handler


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "follow", "answer"])
    parser.add_argument("--flow", choices=sorted(flows.FLOWS), required=True)
    parser.add_argument("--db", required=True, help="the DBOS system database URL")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--ledger", default="")
    parser.add_argument("--crash", default="none")
    parser.add_argument("--executor-id", default=None)
    parser.add_argument("--answer", default=None, help="the answer to the run's question")
    parser.add_argument("--start", default="{}", help="the start event's fields, as JSON")
    args = parser.parse_args(argv)
    point, _, nth = args.crash.partition(":")
    if args.crash not in ("none", "asked") and not (
        point in ("in_step", "after_step") and nth.isdigit()
    ):
        parser.error(f"--crash {args.crash!r}: use none, asked, in_step:N or after_step:N")
    if args.command == "answer" and args.answer is None:
        parser.error("answer needs --answer")
    flows.PROBE.ledger = args.ledger
    if point == "in_step":
        flows.PROBE.kill_in_step = int(nth)
    result = anyio.run(main_async, args, backend="asyncio")
    say(result=result)


if __name__ == "__main__":
    # Run as the importable module, so that nothing is named after __main__.
    from tests.dbos._child import main as _main

    _main(sys.argv[1:])
