"""A trip planner written for LlamaIndex's workflow library in its usual
style: a run started without a scope and streamed, a question answered by a
human, a fan-out to several workers and a fan-in with collect_events, a flaky
call retried by a composed retry policy, progress streamed to the caller, and
the shared store.  examples/ported/ holds it as it runs on the other engine: the
file with the package name in its imports changed, nothing else."""

import asyncio

from anyflow import Context, Workflow, step
from anyflow.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
)
from anyflow.retry_policy import retry_policy, stop_after_attempt, wait_fixed


class CityChosen(Event):
    city: str


class Lookup(Event):
    city: str
    topic: str


class Found(Event):
    topic: str
    text: str


class Progress(Event):
    message: str


FACTS = {
    "weather": "mild, 18 C",
    "food": "grilled sardines",
    "sights": "the castle and the old town",
}


class TripPlanner(Workflow):
    @step
    async def ask_city(self, ctx: Context, ev: StartEvent) -> InputRequiredEvent:
        await ctx.store.set("traveller", ev.traveller)
        return InputRequiredEvent(prefix=f"Where to, {ev.traveller}? ")

    @step
    async def choose(self, ctx: Context, ev: HumanResponseEvent) -> CityChosen:
        ctx.write_event_to_stream(Progress(message=f"planning a trip to {ev.response}"))
        return CityChosen(city=ev.response)

    @step
    async def fan_out(self, ctx: Context, ev: CityChosen) -> Lookup | None:
        await ctx.store.set("topics", len(FACTS))
        for topic in FACTS:
            ctx.send_event(Lookup(city=ev.city, topic=topic))
        return None

    @step(
        num_workers=3, retry_policy=retry_policy(wait=wait_fixed(0.01), stop=stop_after_attempt(3))
    )
    async def look_up(self, ctx: Context, ev: Lookup) -> Found:
        async with ctx.store.edit_state() as state:
            tries = state.get("tries", {})
            tries[ev.topic] = tries.get(ev.topic, 0) + 1
            state["tries"] = tries
        if ev.topic == "weather" and tries[ev.topic] == 1:
            raise ConnectionError("the weather service timed out")
        return Found(topic=ev.topic, text=FACTS[ev.topic])

    @step
    async def gather(self, ctx: Context, ev: Found) -> StopEvent | None:
        found = ctx.collect_events(ev, [Found] * await ctx.store.get("topics"))
        if found is None:
            return None
        traveller = await ctx.store.get("traveller")
        lines = [f"{f.topic}: {f.text}" for f in sorted(found, key=lambda f: f.topic)]
        return StopEvent(result=f"Trip for {traveller}\n" + "\n".join(lines))


async def main() -> None:
    handler = TripPlanner(timeout=10).run(traveller="Ann")
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            print(ev.prefix + "Lisbon")
            handler.ctx.send_event(HumanResponseEvent(response="Lisbon"))
        elif isinstance(ev, Progress):
            print(ev.message)
    result = await handler
    print(result)
    tries = await handler.ctx.store.get("tries")
    print("weather looked up", tries["weather"], "times")


if __name__ == "__main__":
    asyncio.run(main())
