"""Pause and resume: save a run that waits for an answer, stop it, and finish
it later from the saved JSON.

The first session answers the first question, then saves the run when the
second question comes (say the guest went home) and stops it.  The second
session rebuilds the context from the JSON text, as another process would, and
runs it to the end.  The ``drafts`` counter shows what a resume runs again: the
step starts over, its answered wait returns the remembered answer at once, and
the code before the first unanswered wait runs a second time.

Run it with ``python examples/serialization.py`` (add ``--backend trio``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import anyio

from anyflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Question(InputRequiredEvent):
    pass


class Answer(HumanResponseEvent):
    pass


class RoomBooking(Workflow):
    @step
    async def book(self, ev: StartEvent, ctx: Context) -> StopEvent:
        async with ctx.store.edit_state() as state:  # not idempotent: counts the runs
            state["drafts"] = state.get("drafts", 0) + 1
        room = await ctx.wait_for_event(Answer, waiter_event=Question(prefix="Which room?"))
        await ctx.store.set("room", room.response)  # idempotent: safe to run again
        ok = await ctx.wait_for_event(
            Answer, waiter_event=Question(prefix=f"Book the {room.response} for {ev.guest}?")
        )
        if ok.response != "yes":
            return StopEvent(result="nothing booked")
        return StopEvent(result=f"booked the {room.response} for {ev.guest}")


async def first_session() -> str:
    """Answer the first question; save and stop the run at the second."""
    async with RoomBooking().run(guest="Ann") as handler:
        async for ev in handler.stream_events():
            if not isinstance(ev, Question):
                continue
            print(f"? {ev.prefix}")
            if ev.prefix == "Which room?":
                print("> blue room")
                handler.send_event(Answer(response="blue room"))
            else:
                data = handler.ctx.to_dict()
                await handler.cancel_run()
                break
    (waiting,) = data["run"]["waiting"]
    print(f"(saved {', '.join(data)}; the step waits as {waiting['waiter_id']!r}; run stopped)")
    return json.dumps(data)


async def second_session(saved: str) -> None:
    """Resume the saved run and answer what it asks."""
    wf = RoomBooking()
    ctx = Context.from_dict(wf, json.loads(saved))
    async with wf.run(ctx=ctx) as handler:  # no start event: the run goes on
        async for ev in handler.stream_events():
            if isinstance(ev, Question):
                print(f"? {ev.prefix}")
                print("> yes")
                handler.send_event(Answer(response="yes"))
        print(await handler)
    print(f"drafts: {await ctx.store.get('drafts')}, room: {await ctx.store.get('room')}")


async def main() -> None:
    saved = await first_session()
    await second_session(saved)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
