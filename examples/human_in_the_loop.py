"""Human in the loop: a trip booking that asks its traveller two questions.

The first question is *returned* by a step (an ``InputRequiredEvent``); the
answer starts another step.  That step asks the second question without
ending: ``await ctx.wait_for_event(...)`` suspends it until the answer comes.
The traveller is simulated by the loop in ``main()``, which answers each
question as it comes off the event stream.

Run it with ``python examples/human_in_the_loop.py`` (add ``--backend trio``
to run the very same workflow under trio).
"""

from __future__ import annotations

import argparse
import importlib.util

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
    """What the run asks; ``key`` tells the caller which answer event to send."""

    key: str


class Destination(HumanResponseEvent):
    """The answer to the first question; a step accepts it as its input."""


class Confirmation(HumanResponseEvent):
    """The answer to the second question, awaited inside a step."""

    trip: str


PRICES = {"Lisbon": 240, "Oslo": 410}


class TripBooking(Workflow):
    def __init__(self) -> None:
        super().__init__(timeout=60)  # a run that nobody answers ends after a minute

    @step
    async def ask_destination(self, ev: StartEvent, ctx: Context) -> Question:
        await ctx.store.set("traveller", ev.traveller)  # the next step needs it
        return Question(key="destination", prefix=f"Where to, {ev.traveller}?")

    @step
    async def confirm(self, ev: Destination, ctx: Context) -> StopEvent:
        trip = ev.response
        traveller = await ctx.store.get("traveller")
        question = Question(key="confirm", prefix=f"{trip} costs {PRICES[trip]} EUR. Book it?")
        answer = await ctx.wait_for_event(  # the step is suspended here
            Confirmation,
            waiter_event=question,  # published once, when the wait begins
            waiter_id="confirm",
            requirements={"trip": trip},  # only an answer about this trip
            timeout=30,  # else WaitTimeoutError, here
        )
        if answer.response != "yes":
            return StopEvent(result=f"nothing booked for {traveller}")
        return StopEvent(result=f"booked {trip} for {traveller}")


async def main() -> None:
    async with TripBooking().run(traveller="Ann") as handler:
        async for ev in handler.stream_events():
            if not isinstance(ev, Question):
                continue
            print(f"? {ev.prefix}")
            if ev.key == "destination":
                print("> Lisbon")
                handler.send_event(Destination(response="Lisbon"))
            else:
                print("> yes")
                handler.send_event(Confirmation(trip="Lisbon", response="yes"))
        print(await handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
