"""Streaming: read a run's events as they happen.

1. Read part of the stream, stop, and let a second loop read the rest.
2. Ask for the run's internal events too (step attempts starting and ending).
3. See how a failed run's stream ends.

Run it with ``python examples/streaming.py`` (add ``--backend trio``).
"""

from __future__ import annotations

import argparse
import importlib.util

import anyio

from anyflow import (
    Context,
    Event,
    StartEvent,
    StepStateChanged,
    StopEvent,
    Workflow,
    step,
)


class Progress(Event):
    done: int
    total: int


class Report(Workflow):
    @step
    async def crunch(self, ev: StartEvent, ctx: Context) -> StopEvent:
        if ev.parts == 0:
            raise ValueError("nothing to report")
        for n in range(1, ev.parts + 1):
            await anyio.sleep(0.001)  # stands in for real work
            ctx.write_event_to_stream(Progress(done=n, total=ev.parts))
        return StopEvent(result=f"a report in {ev.parts} parts")


async def main() -> None:
    async with Report().run(parts=4) as handler:
        async for ev in handler.stream_events():
            print(f"first loop:  {ev}")
            if isinstance(ev, Progress) and ev.done == 2:
                break  # lets go of the stream
        async for ev in handler.stream_events():  # gets the events not read yet
            print(f"second loop: {ev}")
        print(f"result: {await handler}")

    async with Report().run(parts=2) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            if isinstance(ev, StepStateChanged):
                made = ev.output_event_name
                print(f"step {ev.name} {ev.step_state}: {ev.input_event_name} -> {made}")
            else:
                print(ev)

    async with Report().run(parts=0) as handler:
        async for ev in handler.stream_events():
            print(f"last event: {ev}")  # the only one here
        print(f"exception: {handler.exception()!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
