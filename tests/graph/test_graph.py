"""The workflow graph: which nodes and edges a workflow's annotations give, and
that its JSON is what the incumbent's clients read."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated, Any

import pytest
from workflows.representation import WorkflowGraph as IncumbentGraph
from workflows.representation.types import (
    WorkflowEventNode,
    WorkflowExternalNode,
    WorkflowResourceNode,
    WorkflowStepNode,
)

from anyflow import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    Resource,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.graph import (
    EventNode,
    ExternalNode,
    ResourceNode,
    StepNode,
    WorkflowGraph,
    mermaid,
    workflow_graph,
)

# -- a fan-out: one step returns either of two events, both paths join --------


class Left(Event):
    n: int


class Right(Event):
    label: str = ""


class Joined(Event):
    total: int


class FanOut(Workflow):
    """Splits the work in two."""

    @step
    async def split(self, ev: StartEvent) -> Left | Right:
        """Send half of the work left, half right."""
        return Left(n=1)

    @step(num_workers=4)
    async def left(self, ev: Left) -> Joined:
        return Joined(total=ev.n)

    @step
    async def right(self, ev: Right) -> Joined:
        return Joined(total=0)

    @step
    async def join(self, ev: Joined) -> StopEvent:
        return StopEvent(result=ev.total)


# -- human in the loop ---------------------------------------------------------


class Question(InputRequiredEvent):
    text: str


class Reply(HumanResponseEvent):
    answer: str


def open_db() -> dict[str, Any]:
    """A stand-in for a database connection."""
    return {}


class AskHuman(Workflow):
    @step
    async def ask(
        self, ev: StartEvent, db: Annotated[dict[str, Any], Resource(open_db)]
    ) -> Question:
        return Question(text="name?")

    @step
    async def answer(
        self, ev: Reply, db: Annotated[dict[str, Any], Resource(open_db)]
    ) -> StopEvent:
        return StopEvent(result=ev.answer)


# -- custom start and stop events ----------------------------------------------


class Order(StartEvent):
    item: str
    quantity: int = 1


class Receipt(StopEvent):
    total: float


class Shop(Workflow):
    @step
    async def bill(self, ev: Order) -> Receipt:
        return Receipt(total=2.5 * ev.quantity)


def ids(graph: WorkflowGraph, kind: type) -> list[str]:
    return [n.id for n in graph.nodes if isinstance(n, kind)]


def edges(graph: WorkflowGraph) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in graph.edges}


def test_fan_out_graph_has_a_node_per_step_and_event_and_routes_both_branches() -> None:
    graph = workflow_graph(FanOut)

    assert graph.name == "FanOut"
    assert graph.description == "Splits the work in two."
    assert ids(graph, StepNode) == ["split", "left", "right", "join"]
    assert ids(graph, EventNode) == ["StartEvent", "Left", "Right", "Joined", "StopEvent"]
    assert ids(graph, ExternalNode) == []
    assert edges(graph) == {
        ("StartEvent", "split"),
        ("split", "Left"),
        ("split", "Right"),
        ("Left", "left"),
        ("Right", "right"),
        ("left", "Joined"),
        ("right", "Joined"),
        ("Joined", "join"),
        ("join", "StopEvent"),
    }
    assert len(graph.edges) == len(edges(graph)), "no edge is drawn twice"
    joined = graph.node("Joined")
    assert isinstance(joined, EventNode)
    assert joined.produced_by == ("left", "right")
    assert joined.event_class is Joined
    split = graph.node("split")
    assert isinstance(split, StepNode)
    assert split.description == "Send half of the work left, half right."
    assert graph.node("left") == StepNode("left", "left", None)


def test_human_in_the_loop_goes_through_the_external_node() -> None:
    graph = workflow_graph(AskHuman)

    assert ids(graph, ExternalNode) == ["external_step"]
    (resource,) = (n for n in graph.nodes if isinstance(n, ResourceNode))
    assert resource.getter_name == "open_db"
    assert resource.label == "open_db"
    assert resource.description == "A stand-in for a database connection."
    assert resource.source_file == __file__
    assert resource.cache is True
    assert resource.id.startswith("resource_")
    assert edges(graph) == {
        ("StartEvent", "ask"),
        ("ask", "Question"),
        ("Question", "external_step"),
        ("external_step", "Reply"),
        ("Reply", "answer"),
        ("answer", "StopEvent"),
        ("ask", resource.id),
        ("answer", resource.id),
    }
    labels = {(e.source, e.label) for e in graph.edges if e.target == resource.id}
    assert labels == {("ask", "db"), ("answer", "db")}
    question = graph.node("Question")
    assert isinstance(question, EventNode)
    assert question.event_types == ("Question", "InputRequiredEvent")
    assert question.is_a("InputRequiredEvent")
    assert not question.is_a("HumanResponseEvent")


def test_custom_start_and_stop_events_are_their_own_nodes() -> None:
    graph = workflow_graph(Shop())  # an instance draws as its class

    assert graph == workflow_graph(Shop)
    assert ids(graph, EventNode) == ["Order", "Receipt"]
    assert edges(graph) == {("Order", "bill"), ("bill", "Receipt")}
    data = graph.to_json()
    order, receipt = (n for n in data["nodes"] if n["node_type"] == "event")
    assert order["event_types"] == ["Order", "StartEvent"]
    assert receipt["event_types"] == ["Receipt", "StopEvent"]
    assert order["event_schema"]["properties"] == {
        "item": {"type": "string"},
        "quantity": {"type": "integer", "default": 1},
    }
    assert order["event_schema"]["required"] == ["item"]
    assert receipt["event_schema"]["required"] == ["total"]
    assert receipt["produced_by"] == ["bill"]


class Base(Event):
    pass


class Sub(Base):
    pass


class Routed(Workflow):
    @step
    async def start(self, ev: StartEvent) -> Sub | StopEvent:
        return Sub()

    @step
    async def any_base(self, ev: Base) -> StopEvent:
        return StopEvent()


def test_a_step_accepting_a_base_class_gets_edges_from_its_subclasses() -> None:
    # The runtime routes by subclass, so the drawing does too.
    graph = workflow_graph(Routed)

    assert ("Sub", "any_base") in edges(graph)
    assert ("Base", "any_base") in edges(graph)
    assert not any(source == "StopEvent" for source, _ in edges(graph))


def test_every_graph_is_read_by_the_incumbents_model_node_for_node() -> None:
    kinds = {
        "step": WorkflowStepNode,
        "event": WorkflowEventNode,
        "external": WorkflowExternalNode,
        "resource": WorkflowResourceNode,
    }
    for workflow in (FanOut, AskHuman, Shop, Routed):
        data = workflow_graph(workflow).to_json()
        assert json.loads(json.dumps(data)) == data, "plain JSON data"
        model = IncumbentGraph.model_validate(data)
        assert model.name == workflow.__name__
        assert [n.id for n in model.nodes] == [n["id"] for n in data["nodes"]]
        # Each node is read as its own kind, not as the catch-all generic node.
        assert [type(n) for n in model.nodes] == [kinds[n["node_type"]] for n in data["nodes"]]
        dumped = model.model_dump(mode="json")
        for ours, theirs in zip(data["nodes"], dumped["nodes"], strict=True):
            assert ours.items() <= theirs.items()
        assert [(e.source, e.target, e.label) for e in model.edges] == [
            (e["source"], e["target"], e.get("label")) for e in data["edges"]
        ]


def test_every_edge_joins_nodes_of_the_graph() -> None:
    for workflow in (FanOut, AskHuman, Shop, Routed):
        graph = workflow_graph(workflow)
        node_ids = [n.id for n in graph.nodes]
        assert len(node_ids) == len(set(node_ids))
        for edge in graph.edges:
            assert edge.source in node_ids
            assert edge.target in node_ids


def _twin() -> type[Event]:
    class Left(Event):  # same name as the module's Left, another class
        pass

    return Left


OtherLeft = _twin()


class Clashing(Workflow):
    @step
    async def Right(self, ev: StartEvent) -> Left | OtherLeft:  # a step named like an event
        return Left(n=1)

    @step
    async def a(self, ev: Left) -> StopEvent:
        return StopEvent()

    @step
    async def b(self, ev: OtherLeft) -> Right:
        return Right()

    @step
    async def c(self, ev: Right) -> StopEvent:
        return StopEvent()


def test_clashing_names_get_qualified_ids_and_steps_keep_theirs() -> None:
    graph = workflow_graph(Clashing)

    assert ids(graph, StepNode) == ["Right", "a", "b", "c"]
    events = [n for n in graph.nodes if isinstance(n, EventNode)]
    assert [n.id for n in events] == [
        "StartEvent",
        f"{__name__}.Left",
        f"{__name__}._twin.<locals>.Left",
        "StopEvent",
        f"{__name__}.Right",
    ]
    assert [n.label for n in events] == ["StartEvent", "Left", "Left", "StopEvent", "Right"]
    assert (f"{__name__}._twin.<locals>.Left", "b") in edges(graph)
    IncumbentGraph.model_validate(graph.to_json())


async def make_client() -> str:
    return "client"


class Resources(Workflow):
    @step
    async def one(
        self,
        ev: StartEvent,
        client: Annotated[str, Resource(make_client)],
        other: Annotated[str, Resource(make_client, cache=False)],
    ) -> Left:
        return Left(n=1)

    @step
    async def two(self, ev: Left, client: Annotated[str, Resource(make_client)]) -> StopEvent:
        return StopEvent()


def test_resources_are_one_node_per_factory_and_parameter() -> None:
    # The runtime shares a cached value between parameters of one name and
    # factory, and never between two parameters: so does the graph.
    graph = workflow_graph(Resources)
    nodes = [n for n in graph.nodes if isinstance(n, ResourceNode)]

    assert [(n.getter_name, n.cache) for n in nodes] == [
        ("make_client", True),
        ("make_client", False),
    ]
    client, other = nodes
    assert {(e.source, e.target, e.label) for e in graph.edges if e.label} == {
        ("one", client.id, "client"),
        ("one", other.id, "other"),
        ("two", client.id, "client"),
    }
    assert workflow_graph(Resources).nodes == graph.nodes, "ids are stable"


def test_docstrings_are_never_inherited() -> None:
    graph = workflow_graph(Shop)
    assert graph.description is None  # not Workflow's docstring
    assert graph.node("bill") == StepNode("bill", "bill", None)


def test_node_names_an_unknown_id() -> None:
    with pytest.raises(
        KeyError, match=r"^\"Shop has no node 'nope'; its nodes are: bill, Order, Receipt\"$"
    ):
        workflow_graph(Shop).node("nope")


def test_mermaid_draws_every_node_and_edge_with_safe_ids() -> None:
    class Done(StopEvent):
        """Quotes "here"."""

    class Tricky(Workflow):
        @step
        async def end(
            self, ev: StartEvent, db: Annotated[dict[str, Any], Resource(open_db)]
        ) -> Question:
            return Question(text="?")

        @step
        async def finish(self, ev: Reply) -> Done:
            return Done()

    text = mermaid(workflow_graph(Tricky))
    lines = text.splitlines()

    assert lines[0] == "flowchart TD"
    assert text.endswith("\n")
    assert '    step_end["end"]' in lines  # never the bare keyword `end`
    assert '    event_StartEvent(["StartEvent"])' in lines
    assert '    external_step{{"external_step"}}' in lines
    resource = next(line for line in lines if line.startswith("    resource_"))
    assert resource.endswith('[("open_db")]')
    resource_id = resource.split("[")[0].strip()
    assert f'    step_end -->|"db"| {resource_id}' in lines
    assert "    event_Question --> external_step" in lines
    assert "    external_step --> event_Reply" in lines
    assert "    step_finish --> event_Done" in lines
    arrows = [line for line in lines if "-->" in line]
    assert len(arrows) == len(workflow_graph(Tricky).edges)
    assert "    class step_end,step_finish step" in lines


def test_mermaid_escapes_quotes_in_labels() -> None:
    graph = WorkflowGraph(
        name="x",
        nodes=(StepNode("a", 'say "hi" & go'), ExternalNode("b c", "b")),
        edges=(),
    )
    lines = mermaid(graph).splitlines()
    assert '    step_a["say #quot;hi#quot; #amp; go"]' in lines
    assert '    external_b_c{{"b"}}' in lines


_DRAW_IN_A_FRESH_PROCESS = """
import sys
from anyflow import Event, StartEvent, StopEvent, Workflow, step
from anyflow.graph import mermaid, workflow_graph

class Left(Event):
    n: int

class Split(Workflow):
    @step
    async def split(self, ev: StartEvent) -> Left:
        return Left(n=1)

    @step
    async def join(self, ev: Left) -> StopEvent:
        return StopEvent()

assert mermaid(workflow_graph(Split)).startswith("flowchart TD")
print(sorted({m.split(".")[0] for m in sys.modules} & {"pydantic", "starlette", "workflows"}))
"""


def test_building_and_drawing_a_graph_needs_no_server_dependencies() -> None:
    # `anyflow draw` must work with the core dependencies alone.  This module
    # imports the incumbent (pydantic) for its own checks, hence a fresh process.
    done = subprocess.run(
        [sys.executable, "-c", _DRAW_IN_A_FRESH_PROCESS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
