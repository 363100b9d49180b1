"""Pausing a run that waits for a customer, saving it as JSON, and resuming it
later with a new workflow instance; and what a bad save file reports."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from anyflow import (
    Context,
    ContextSerdeError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowIdleEvent,
    step,
)

pytestmark = pytest.mark.anyio


class CustomerReply(HumanResponseEvent):
    question: str


class Diagnosis(Event):
    product: str
    symptom: str


class SupportTicket(Workflow):
    """Ask the customer which product, then what is wrong, then answer."""

    @step
    async def intake(self, ev: StartEvent, ctx: Context) -> Diagnosis:
        # idempotent side effect before the waits: setting a value, not appending
        await ctx.store.set("ticket", {"id": ev.ticket_id, "customer": ev.customer})
        product = await ctx.wait_for_event(
            CustomerReply,
            waiter_event=InputRequiredEvent(
                prefix="Which product is it about?", question="product"
            ),
            waiter_id="product",
            requirements={"question": "product"},
        )
        await ctx.store.set("ticket.product", product.response)
        symptom = await ctx.wait_for_event(
            CustomerReply,
            waiter_event=InputRequiredEvent(prefix="What do you see?", question="symptom"),
            waiter_id="symptom",
            requirements={"question": "symptom"},
        )
        return Diagnosis(product=product.response, symptom=symptom.response)

    @step
    async def resolve(self, ev: Diagnosis, ctx: Context) -> StopEvent:
        ticket = await ctx.store.get("ticket")
        advice = "power-cycle it" if "blink" in ev.symptom else "send it in"
        return StopEvent(
            result=f"{ticket['id']} for {ticket['customer']}: {ev.product} {ev.symptom} -> {advice}"
        )


ANSWERS = {"product": "router", "symptom": "blinking red light"}


async def answer_everything(wf: Workflow, **start: Any) -> Any:
    async with wf.run(**start) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(
                    CustomerReply(question=ev.question, response=ANSWERS[ev.question])
                )
        return await handler


async def pause_at_symptom_question() -> str:
    """Run until the second question, answer the first, save the run as JSON text."""
    saved: str | None = None
    async with SupportTicket(timeout=10).run(ticket_id="T-42", customer="Ada") as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent) and ev.question == "product":
                handler.send_event(CustomerReply(question="product", response="router"))
            elif isinstance(ev, InputRequiredEvent) and ev.question == "symptom":
                saved = json.dumps(handler.ctx.to_dict())  # the customer went for lunch
                await handler.cancel_run()
    assert saved is not None
    return saved


async def test_a_paused_ticket_resumes_in_a_new_workflow_with_the_same_result() -> None:
    uninterrupted = await answer_everything(
        SupportTicket(timeout=10), ticket_id="T-42", customer="Ada"
    )

    saved = await pause_at_symptom_question()

    fresh = SupportTicket(timeout=10)  # e.g. another process, after a restart
    ctx = Context.from_dict(fresh, json.loads(saved))
    assert await ctx.store.get("ticket.product") == "router"

    asked_again: list[str] = []
    async with fresh.run(ctx=ctx) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            if isinstance(ev, InputRequiredEvent):
                asked_again.append(ev.question)
            elif isinstance(ev, WorkflowIdleEvent):
                handler.send_event(CustomerReply(question="symptom", response=ANSWERS["symptom"]))
        resumed = await handler

    assert resumed == uninterrupted == "T-42 for Ada: router blinking red light -> power-cycle it"
    assert "product" not in asked_again  # already answered before the pause
    assert await handler.ctx.store.get("ticket") == {
        "id": "T-42",
        "customer": "Ada",
        "product": "router",
    }


async def test_one_save_file_can_be_resumed_more_than_once() -> None:
    saved = await pause_at_symptom_question()

    results = []
    for symptom in ("blinking red light", "no power at all"):
        wf = SupportTicket(timeout=10)
        async with wf.run(ctx=Context.from_dict(wf, json.loads(saved))) as handler:
            async for ev in handler.stream_events(expose_internal=True):
                if isinstance(ev, WorkflowIdleEvent):
                    handler.send_event(CustomerReply(question="symptom", response=symptom))
            results.append(await handler)

    assert results == [
        "T-42 for Ada: router blinking red light -> power-cycle it",
        "T-42 for Ada: router no power at all -> send it in",
    ]


@attrs.define
class Cart:
    items: list[str] = attrs.Factory(list)
    coupon: str | None = None


class Checkout(Workflow):
    @step
    async def checkout(self, ev: StartEvent, ctx: Context[Cart]) -> StopEvent:
        await ctx.store.set("items", list(ev.items))
        coupon = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Coupon code?")
        )
        async with ctx.store.edit_state() as cart:
            cart.coupon = coupon.response
        state = await ctx.store.get_state()
        return StopEvent(result=(type(state).__name__, state.items, state.coupon))


async def test_a_typed_state_survives_a_pause_and_resume() -> None:
    saved: str | None = None
    async with Checkout(timeout=10).run(items=["pen", "ink"]) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                saved = json.dumps(handler.ctx.to_dict())
                await handler.cancel_run()
    assert saved is not None

    wf = Checkout(timeout=10)
    ctx = Context.from_dict(wf, json.loads(saved))
    assert await ctx.store.get_state() == Cart(items=["pen", "ink"])
    async with wf.run(ctx=ctx) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            if isinstance(ev, WorkflowIdleEvent):
                handler.send_event(HumanResponseEvent(response="SPRING10"))
        result = await handler

    assert result == ("Cart", ["pen", "ink"], "SPRING10")


class VisitCounter(Workflow):
    @step
    async def visit(self, ev: StartEvent, ctx: Context) -> StopEvent:
        async with ctx.store.edit_state() as state:
            state["visits"] = state.get("visits", 0) + 1
            state.setdefault("guests", []).append(ev.guest)
        return StopEvent(result=await ctx.store.get("visits"))


async def test_a_finished_runs_saved_context_starts_the_next_run_with_its_store() -> None:
    wf = VisitCounter(timeout=10)
    async with wf.run(guest="ann") as handler:
        assert await handler == 1
    saved = json.dumps(handler.ctx.to_dict())

    wf2 = VisitCounter(timeout=10)
    async with wf2.run(guest="bo", ctx=Context.from_dict(wf2, json.loads(saved))) as handler2:
        assert await handler2 == 2
    assert await handler2.ctx.store.get("guests") == ["ann", "bo"]


# --------------------------------------------------------------------------
# Bad save files
# --------------------------------------------------------------------------


def event_type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


async def test_a_save_file_naming_an_event_type_this_process_does_not_know_is_rejected() -> None:
    saved = await pause_at_symptom_question()
    # the process that reads the file does not have the reply class any more
    assert event_type_name(CustomerReply) in saved
    renamed = saved.replace(event_type_name(CustomerReply), "retired_module:CustomerReply")

    with pytest.raises(ContextSerdeError) as info:
        Context.from_dict(SupportTicket(), json.loads(renamed))

    message = str(info.value)
    assert "retired_module:CustomerReply" in message
    assert "$." in message  # the JSON path of the offending event


async def test_a_save_file_from_another_format_version_is_rejected() -> None:
    data = json.loads(await pause_at_symptom_question())
    data["version"] = data["version"] + 1

    with pytest.raises(ContextSerdeError, match=r"\$\.version"):
        Context.from_dict(SupportTicket(), data)


async def test_a_corrupt_save_file_is_rejected_with_the_path_of_the_problem() -> None:
    data = json.loads(await pause_at_symptom_question())
    data["run"] = "garbled by a text editor"

    with pytest.raises(ContextSerdeError, match=r"\$\.run"):
        Context.from_dict(SupportTicket(), data)

    with pytest.raises(ContextSerdeError):
        Context.from_dict(SupportTicket(), "not a saved context")


class SomeOtherFlow(Workflow):
    @step
    async def only(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=None)


async def test_a_save_file_from_another_workflow_is_rejected() -> None:
    data = json.loads(await pause_at_symptom_question())

    with pytest.raises(ContextSerdeError) as info:
        Context.from_dict(SomeOtherFlow(), data)

    assert "SupportTicket" in str(info.value)
    assert "SomeOtherFlow" in str(info.value)


class Attachment:
    """Not plain data."""


class KeepsAttachments(Workflow):
    @step
    async def upload(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("attachments", {"files": ["a.txt", Attachment()]})
        reply = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Anything else?")
        )
        return StopEvent(result=reply.response)


async def test_saving_a_store_that_is_not_json_safe_names_the_value() -> None:
    async with KeepsAttachments(timeout=10).run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                with pytest.raises(ContextSerdeError) as info:
                    handler.ctx.to_dict()
                handler.send_event(HumanResponseEvent(response="no"))
        assert await handler == "no"

    message = str(info.value)
    assert "$.store.attachments" in message
    assert "Attachment" in message
