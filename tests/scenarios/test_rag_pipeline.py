"""A retrieval-augmented answering pipeline, the way a user would build one.

Typed start and stop events, a fan-out to shard retrievers running with
``num_workers``, a fan-in with ``collect_events`` and progress streamed to the
caller.
"""

from __future__ import annotations

import anyio
import pytest

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step

pytestmark = pytest.mark.anyio

CORPUS = {
    0: ("owls hunt at night", "owls have silent feathers"),
    1: ("barn owls eat mice",),
    2: (),
    3: ("snowy owls live in the arctic",),
    4: ("an owl can turn its head 270 degrees",),
    5: (),
    6: ("owls swallow prey whole",),
    7: ("a group of owls is a parliament",),
}


class Question(StartEvent):
    question: str
    shards: int = 8


class ShardQuery(Event):
    shard: int
    question: str


class ShardHits(Event):
    shard: int
    docs: tuple[str, ...]


class Progress(Event):
    producer: str
    stage: str


class Answer(StopEvent):
    text: str
    sources: tuple[int, ...]


class RagFlow(Workflow):
    """Fan out one query per shard, retrieve with four workers, fan in, synthesize."""

    def __init__(self, gate: anyio.Event | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gate = gate
        self.active = 0
        self.peak = 0

    @step
    async def fan_out(self, ev: Question, ctx: Context) -> ShardQuery | None:
        await ctx.store.set("expected", ev.shards)
        for shard in range(ev.shards):
            ctx.send_event(ShardQuery(shard=shard, question=ev.question))
        return None

    @step(num_workers=4)
    async def retrieve(self, ev: ShardQuery, ctx: Context) -> ShardHits:
        producer = f"shard-{ev.shard}"
        ctx.write_event_to_stream(Progress(producer=producer, stage="started"))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await anyio.lowlevel.checkpoint()
        finally:
            self.active -= 1
        ctx.write_event_to_stream(Progress(producer=producer, stage="finished"))
        return ShardHits(shard=ev.shard, docs=CORPUS[ev.shard])

    @step
    async def synthesize(self, ev: ShardHits, ctx: Context) -> Answer | None:
        expected = await ctx.store.get("expected")
        hits = ctx.collect_events(ev, [ShardHits] * expected)
        if hits is None:
            return None
        assert all(isinstance(h, ShardHits) for h in hits)
        ctx.write_event_to_stream(Progress(producer="synthesize", stage="finished"))
        useful = sorted((h for h in hits if h.docs), key=lambda h: h.shard)
        text = "; ".join(doc for h in useful for doc in h.docs)
        return Answer(text=text, sources=tuple(h.shard for h in useful))


async def test_rag_answer_uses_every_shard_with_hits() -> None:
    answer = await RagFlow(timeout=10).run(question="tell me about owls")

    assert isinstance(answer, Answer)
    assert answer.sources == (0, 1, 3, 4, 6, 7)
    assert answer.text.startswith("owls hunt at night; owls have silent feathers; barn owls")
    assert "parliament" in answer.text


async def test_typed_start_event_can_be_passed_as_an_instance() -> None:
    answer = await RagFlow(timeout=10).run(start_event=Question(question="owls?", shards=2))

    assert isinstance(answer, Answer)
    assert answer.sources == (0, 1)


async def test_typed_start_event_fields_and_defaults_come_from_run_keywords() -> None:
    answer = await RagFlow(timeout=10).run(question="owls?", shards=3)

    assert isinstance(answer, Answer)
    assert answer.sources == (0, 1)


async def test_retrievers_run_with_at_most_num_workers_in_parallel() -> None:
    gate = anyio.Event()
    flow = RagFlow(gate=gate, timeout=10)

    async with flow.run(question="owls?") as handler:
        await anyio.wait_all_tasks_blocked()
        # eight shard queries are waiting, but only four workers may hold one
        assert flow.active == 4
        assert not handler.is_done()
        gate.set()
        answer = await handler

    assert flow.peak == 4
    assert flow.active == 0
    assert answer.sources == (0, 1, 3, 4, 6, 7)


async def test_progress_is_streamed_in_order_per_producer_and_ends_with_the_answer() -> None:
    async with RagFlow(timeout=10).run(question="owls?") as handler:
        events = [ev async for ev in handler.stream_events()]
        answer = await handler

    assert events[-1] == answer
    progress = [ev for ev in events if isinstance(ev, Progress)]
    by_producer: dict[str, list[str]] = {}
    for ev in progress:
        by_producer.setdefault(ev.producer, []).append(ev.stage)
    assert by_producer == {
        **{f"shard-{i}": ["started", "finished"] for i in range(8)},
        "synthesize": ["finished"],
    }
    # the synthesizer can only report after every shard finished
    assert progress[-1] == Progress(producer="synthesize", stage="finished")


# -- a hybrid retriever: three different sources, collected in a fixed order -----------------


class VectorQuery(Event):
    text: str


class KeywordQuery(Event):
    text: str


class WebQuery(Event):
    text: str


class VectorHits(Event):
    docs: tuple[str, ...]


class KeywordHits(Event):
    docs: tuple[str, ...]


class WebHits(Event):
    docs: tuple[str, ...]


class HybridFlow(Workflow):
    def __init__(self, gates: dict[str, anyio.Event], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gates = gates
        self.arrivals: list[str] = []

    @step
    async def plan(self, ev: StartEvent, ctx: Context) -> VectorQuery | KeywordQuery | WebQuery:
        ctx.send_event(WebQuery(text=ev.query))
        ctx.send_event(KeywordQuery(text=ev.query))
        return VectorQuery(text=ev.query)

    @step
    async def vector(self, ev: VectorQuery) -> VectorHits:
        await self.gates["vector"].wait()
        return VectorHits(docs=(f"vec:{ev.text}",))

    @step
    async def keyword(self, ev: KeywordQuery) -> KeywordHits:
        await self.gates["keyword"].wait()
        return KeywordHits(docs=(f"kw:{ev.text}",))

    @step
    async def web(self, ev: WebQuery) -> WebHits:
        await self.gates["web"].wait()
        return WebHits(docs=(f"web:{ev.text}",))

    @step
    async def fuse(self, ev: VectorHits | KeywordHits | WebHits, ctx: Context) -> StopEvent | None:
        self.arrivals.append(type(ev).__name__)
        hits = ctx.collect_events(ev, [VectorHits, KeywordHits, WebHits])
        if hits is None:
            return None
        return StopEvent(result=[doc for h in hits for doc in h.docs])


async def test_collect_events_returns_the_requested_order_not_the_arrival_order() -> None:
    gates = {name: anyio.Event() for name in ("vector", "keyword", "web")}
    flow = HybridFlow(gates, timeout=10)

    async with flow.run(query="owls") as handler:
        for name in ("web", "keyword", "vector"):
            await anyio.wait_all_tasks_blocked()
            gates[name].set()
        result = await handler

    assert flow.arrivals == ["WebHits", "KeywordHits", "VectorHits"]
    # a plain StopEvent gives its result to the caller
    assert result == ["vec:owls", "kw:owls", "web:owls"]


# -- batching with collect_events, and a sub-workflow called from a step ---------------------


class Doc(Event):
    n: int


class Batcher(Workflow):
    """Embeds documents two at a time; an odd one out waits for a partner."""

    @step
    async def load(self, ev: StartEvent, ctx: Context) -> Doc | None:
        for n in range(ev.docs):
            ctx.send_event(Doc(n=n))
        return None

    @step
    async def embed(self, ev: Doc, ctx: Context) -> StopEvent | None:
        pair = ctx.collect_events(ev, [Doc, Doc])
        if pair is None:
            return None
        async with ctx.store.edit_state() as state:
            batches = state.setdefault("batches", [])
            batches.append([d.n for d in pair])
            if len(batches) == 2:
                return StopEvent(result=list(batches))
        return None


async def test_collect_events_keeps_extra_events_for_the_next_set_oldest_first() -> None:
    assert await Batcher(timeout=10).run(docs=5) == [[0, 1], [2, 3]]


class Rerank(Workflow):
    @step
    async def rerank(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=sorted(ev.docs, key=len))


class Retrieved(Event):
    docs: tuple[str, ...]


class RagWithRerank(Workflow):
    @step
    async def retrieve(self, ev: StartEvent, ctx: Context) -> Retrieved:
        ctx.write_event_to_stream(Progress(producer="retrieve", stage="finished"))
        return Retrieved(docs=("a long document", "short", "medium doc"))

    @step
    async def answer(self, ev: Retrieved, ctx: Context) -> StopEvent:
        ranked = await Rerank(timeout=10).run(docs=list(ev.docs))
        ctx.write_event_to_stream(Progress(producer="answer", stage="finished"))
        return StopEvent(result=ranked[0])


async def test_a_step_can_run_another_workflow_to_the_end() -> None:
    async with RagWithRerank(timeout=10).run() as handler:
        events = [ev async for ev in handler.stream_events()]
        result = await handler

    assert result == "short"
    # only the outer run's events are on its stream
    assert [ev for ev in events if isinstance(ev, Progress)] == [
        Progress(producer="retrieve", stage="finished"),
        Progress(producer="answer", stage="finished"),
    ]
    assert events[-1] == StopEvent(result="short")


class ParallelFanIn(Workflow):
    """The collecting step itself has four workers; the set must still complete once."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.completions = 0

    @step
    async def fan_out(self, ev: StartEvent, ctx: Context) -> Doc | None:
        for n in range(8):
            ctx.send_event(Doc(n=n))
        return None

    @step(num_workers=4)
    async def gather(self, ev: Doc, ctx: Context) -> StopEvent | None:
        await anyio.lowlevel.checkpoint()
        docs = ctx.collect_events(ev, [Doc] * 8)
        await anyio.lowlevel.checkpoint()
        if docs is None:
            return None
        self.completions += 1
        return StopEvent(result=sorted(d.n for d in docs))


async def test_collect_events_is_atomic_across_workers_of_the_collecting_step() -> None:
    flow = ParallelFanIn(timeout=10)

    assert await flow.run() == list(range(8))
    assert flow.completions == 1
