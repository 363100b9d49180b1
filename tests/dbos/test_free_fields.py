"""Free fields (keywords an event class does not declare) in a DBOSRuntime run:
recorded with their events and read back by the runtime that resumes the run."""

from __future__ import annotations

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
from anyflow.dbos import DBOSRuntime
from anyflow.events import HumanResponseEvent, InputRequiredEvent

RAN: list[str] = []


class Quoted(Event):
    total: int


class Quote(Workflow):
    @step
    async def quote(self, ev: StartEvent) -> Quoted:
        RAN.append("quote")
        return Quoted(total=sum(ev.items), currency=ev.currency)  # type: ignore[call-arg]

    @step
    async def confirm(self, ev: Quoted, ctx: Context) -> StopEvent:
        RAN.append("confirm")
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="book?", total=ev.total)
        )
        return StopEvent(result=answer.response, by=answer.by, currency=ev.currency)


def runtime(database_url: str) -> DBOSRuntime:
    return DBOSRuntime(
        name="anyflow-tests", database_url=database_url, dbos_config={"log_level": "WARNING"}
    )


async def test_free_fields_come_back_when_the_next_runtime_resumes(database_url: str) -> None:
    RAN.clear()
    async with runtime(database_url) as rt:
        handler = Quote().run(run_id="q-1", runtime=rt, items=[40, 60], currency="EUR")
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                assert ev == InputRequiredEvent(prefix="book?", total=100)
                break
    async with runtime(database_url) as rt:
        handler = Quote().run(run_id="q-1", runtime=rt)
        seen = []
        async for ev in handler.stream_events():
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="yes", by="ann"))
        assert await handler == "yes"
    # quote ran once: confirm read its event, free fields and all, from the record.
    assert RAN == ["quote", "confirm", "confirm"]
    assert seen == [
        InputRequiredEvent(prefix="book?", total=100),
        StopEvent(result="yes", by="ann", currency="EUR"),
    ]
