"""Common mistakes a new user makes, and the errors that must point at them."""

from __future__ import annotations

import attrs
import pytest

from anyflow import (
    AnyflowError,
    Context,
    ContextStateError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    WorkflowValidationError,
    step,
)

pytestmark = pytest.mark.anyio


class Retrieved(Event):
    docs: tuple[str, ...]


class Summary(Event):
    text: str


class Audit(Event):
    entry: str


ran: list[str] = []


async def _run_expecting_validation_error(flow_class: type[Workflow]) -> WorkflowValidationError:
    """Validation may happen at construction or at run(); either way nothing runs."""
    ran.clear()
    with pytest.raises(WorkflowValidationError) as info:
        await flow_class().run(query="q")
    assert ran == []
    assert isinstance(info.value, AnyflowError)
    return info.value


async def test_typo_in_an_event_annotation_is_reported_with_the_step_and_the_name() -> None:
    ran.clear()
    # the error may come when the class is defined or when it runs; either way, nothing runs

    async def define_and_run() -> None:
        class TypoFlow(Workflow):
            @step
            async def retrieve(self, ev: StartEvent) -> Retrieved:
                ran.append("retrieve")
                return Retrieved(docs=())

            @step
            async def summarize(self, ev: Retreived) -> StopEvent:  # type: ignore[name-defined]  # noqa: F821
                ran.append("summarize")
                return StopEvent(result="x")

        await TypoFlow().run(query="q")

    with pytest.raises(WorkflowValidationError) as info:
        await define_and_run()

    assert ran == []
    message = str(info.value)
    assert "TypoFlow" in message
    assert "summarize" in message
    assert "Retreived" in message


async def test_forgotten_return_annotation_is_reported_with_the_step() -> None:
    ran.clear()

    async def define_and_run() -> None:
        class NoReturnAnnotation(Workflow):
            @step
            async def retrieve(self, ev: StartEvent):  # type: ignore[no-untyped-def]
                ran.append("retrieve")
                return Retrieved(docs=())

            @step
            async def summarize(self, ev: Retrieved) -> StopEvent:
                ran.append("summarize")
                return StopEvent(result="x")

        await NoReturnAnnotation().run(query="q")

    with pytest.raises(WorkflowValidationError) as info:
        await define_and_run()

    assert ran == []
    message = str(info.value)
    assert "NoReturnAnnotation" in message
    # either the step that forgot its annotation or the consumer left without a producer
    assert "retrieve" in message or ("summarize" in message and "Retrieved" in message)


async def test_event_produced_but_never_consumed() -> None:
    class Forgetful(Workflow):
        @step
        async def retrieve(self, ev: StartEvent, ctx: Context) -> Retrieved | Audit:
            ran.append("retrieve")
            ctx.send_event(Audit(entry="retrieved"))
            return Retrieved(docs=())

        @step
        async def summarize(self, ev: Retrieved) -> StopEvent:
            ran.append("summarize")
            return StopEvent(result="x")

    message = str(await _run_expecting_validation_error(Forgetful))
    assert "Forgetful" in message
    assert "retrieve" in message
    assert "Audit" in message


async def test_no_step_returns_a_stop_event() -> None:
    class Endless(Workflow):
        @step
        async def retrieve(self, ev: StartEvent) -> Retrieved:
            ran.append("retrieve")
            return Retrieved(docs=())

        @step
        async def summarize(self, ev: Retrieved) -> Summary:
            ran.append("summarize")
            return Summary(text="")

        @step
        async def publish(self, ev: Summary) -> None:
            ran.append("publish")

    message = str(await _run_expecting_validation_error(Endless))
    assert "Endless" in message
    assert "StopEvent" in message


async def test_no_step_accepts_the_start_event() -> None:
    class Headless(Workflow):
        @step
        async def summarize(self, ev: Retrieved) -> StopEvent:
            ran.append("summarize")
            return StopEvent(result="x")

    message = str(await _run_expecting_validation_error(Headless))
    assert "Headless" in message
    assert "StartEvent" in message


async def test_accepting_an_event_that_nobody_sends() -> None:
    class Orphan(Workflow):
        @step
        async def start(self, ev: StartEvent) -> StopEvent:
            ran.append("start")
            return StopEvent(result="x")

        @step
        async def on_summary(self, ev: Summary) -> StopEvent:
            ran.append("on_summary")
            return StopEvent(result="y")

    message = str(await _run_expecting_validation_error(Orphan))
    assert "Orphan" in message
    assert "on_summary" in message
    assert "Summary" in message


async def test_events_the_caller_may_send_need_no_producer() -> None:
    class Answer(HumanResponseEvent):
        text: str

    class Ask(Workflow):
        @step
        async def start(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: Answer) -> StopEvent:
            return StopEvent(result=ev.text)

    async with Ask(timeout=10).run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(Answer(text="42"))
        assert await handler == "42"


def test_a_step_without_an_event_annotation_is_rejected_when_the_class_is_defined() -> None:
    with pytest.raises(WorkflowValidationError) as info:

        class Careless(Workflow):
            @step
            async def start(self, ev) -> StopEvent:  # type: ignore[no-untyped-def]
                return StopEvent(result="x")

    message = str(info.value)
    assert "Careless" in message
    assert "start" in message
    assert "annotat" in message  # the fix: annotate the event parameter


async def test_union_and_postponed_annotations_route_both_event_types() -> None:
    class Router(Workflow):
        @step
        async def start(self, ev: StartEvent) -> Retrieved | Summary:
            if ev.kind == "docs":
                return Retrieved(docs=("a", "b"))
            return Summary(text="short")

        @step
        async def finish(self, ev: Retrieved | Summary) -> StopEvent:
            return StopEvent(result=type(ev).__name__)

    assert await Router(timeout=10).run(kind="docs") == "Retrieved"
    assert await Router(timeout=10).run(kind="summary") == "Summary"


# -- events ---------------------------------------------------------------------------------


def test_a_misspelt_keyword_is_a_type_error_naming_the_fields() -> None:
    with pytest.raises(TypeError) as info:
        Summary(txet="hello")
    assert "txet" in str(info.value)
    assert "text" in str(info.value)


def test_a_typed_start_event_takes_free_fields_beside_its_own() -> None:
    class Query(StartEvent):
        question: str

    assert StartEvent(topic="owls").topic == "owls"
    assert Query(question="q", topk=3).topk == 3
    with pytest.raises(TypeError, match=r"missing required field.*question"):
        Query(topk=3)


def test_events_are_frozen_and_derived_with_evolve() -> None:
    summary = Summary(text="draft")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        summary.text = "changed"  # type: ignore[misc]
    assert attrs.evolve(summary, text="final") == Summary(text="final")
    assert summary == Summary(text="draft")


def test_stop_event_carries_a_result() -> None:
    assert StopEvent(result={"a": 1}).result == {"a": 1}


# -- context phases -------------------------------------------------------------------------


class Echo(Workflow):
    @step
    async def start(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.text)


def test_sending_on_a_context_that_is_not_running_is_a_context_state_error() -> None:
    ctx = Context(Echo())
    with pytest.raises(ContextStateError):
        ctx.send_event(StartEvent(text="hi"))


async def test_writing_to_the_stream_from_outside_the_run_is_a_context_state_error() -> None:
    async with Echo(timeout=10).run(text="hi") as handler:
        with pytest.raises(ContextStateError):
            handler.ctx.write_event_to_stream(Summary(text="from outside"))
        assert await handler == "hi"


async def test_a_stream_read_to_its_end_refuses_a_later_reader() -> None:
    async with Echo(timeout=10).run(text="hi") as handler:
        first = [ev async for ev in handler.stream_events()]
        with pytest.raises(
            WorkflowRuntimeError, match=r"^All the streamed events have already been consumed"
        ):
            handler.stream_events()
        assert await handler == "hi"

    assert first == [StopEvent(result="hi")]


async def test_a_second_concurrent_consumer_gets_a_clear_error() -> None:
    import anyio

    outcomes: dict[str, object] = {}

    async def consume(name: str) -> None:
        try:
            outcomes[name] = [ev async for ev in handler.stream_events()]
        except AnyflowError as exc:
            outcomes[name] = exc

    async with Echo(timeout=10).run(text="hi") as handler, anyio.create_task_group() as tg:
        tg.start_soon(consume, "first")
        tg.start_soon(consume, "second")

    winners = [v for v in outcomes.values() if isinstance(v, list)]
    losers = [v for v in outcomes.values() if isinstance(v, AnyflowError)]
    assert winners == [[StopEvent(result="hi")]]
    assert len(losers) == 1
    assert "stream" in str(losers[0]).lower()


def test_every_event_takes_free_fields_unless_its_class_says_open_false() -> None:
    class Ping(Event):
        pass

    class Pong(Event, open=False):
        pass

    misspelt = StopEvent(reslt=1)
    assert (misspelt.result, misspelt.reslt) == (None, 1)
    assert Ping(payload=1).payload == 1
    with pytest.raises(TypeError, match="Pong has no field 'payload'"):
        Pong(payload=1)


def test_a_typed_input_required_event_keeps_its_prefix() -> None:
    class AskBudget(InputRequiredEvent):
        limit: int

    ask = AskBudget(prefix="Budget? ", limit=100)
    assert (ask.prefix, ask.limit) == ("Budget? ", 100)
    with pytest.raises(TypeError, match="limit"):
        AskBudget(prefix="Budget? ", limt=100)
