"""anyflow.representation: the incumbent's graph schema, as a view of anyflow.graph.

The same workflow, written once for anyflow and once for llama-index-workflows,
must give the same nodes and edges; the types must read and write the JSON the
incumbent's pydantic models do; ``filter_by_node_type`` must bridge edges."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import types
from typing import Annotated, Any

import pytest
import workflows
import workflows.events
import workflows.representation
import workflows.resource

import anyflow
import anyflow.representation.build
import anyflow.representation.types
import anyflow.resources
from anyflow.graph import mermaid, workflow_graph
from anyflow.representation import (
    WorkflowEventNode,
    WorkflowExternalNode,
    WorkflowGenericNode,
    WorkflowGraph,
    WorkflowGraphEdge,
    WorkflowNodeBase,
    WorkflowResourceConfigNode,
    WorkflowResourceNode,
    WorkflowStepNode,
    get_workflow_representation,
)


class Database:
    pass


def open_database() -> Database:
    """Connects to the orders database."""
    return Database()


def define(lib: Any) -> type[Any]:
    """A workflow with a fan-out, a human in the loop and a resource, written
    against ``lib`` (anyflow or the incumbent: they share these names)."""

    class Order(lib.Event):
        item: str = ""

    class Question(lib.InputRequiredEvent):
        pass

    class Answer(lib.HumanResponseEvent):
        pass

    class Shipped(lib.Event):
        pass

    class Shop(lib.Workflow):
        """Takes an order, asks before shipping it."""

        @lib.step
        async def take(self, ev: lib.StartEvent) -> Order | Question:
            """Reads the order."""
            return Order()

        @lib.step
        async def ship(
            self, ev: Order, db: Annotated[Database, lib.Resource(open_database)]
        ) -> Shipped:
            return Shipped()

        @lib.step
        async def confirm(self, ev: Answer) -> Shipped:
            return Shipped()

        @lib.step
        async def done(self, ev: Shipped) -> lib.StopEvent:
            return lib.StopEvent(result="ok")

    return Shop


OursShop = define(anyflow)
TheirShop = define(
    types.SimpleNamespace(
        **{name: getattr(workflows.events, name) for name in dir(workflows.events)},
        Workflow=workflows.Workflow,
        step=workflows.step,
        Resource=workflows.resource.Resource,
    )
)


def node_summary(graph: Any) -> set[tuple[str, str, str]]:
    return {(n.node_type, n.id, getattr(n, "event_type", "") or "") for n in graph.nodes}


def edge_summary(graph: Any) -> set[tuple[str, str, str | None]]:
    resource = {n.id for n in graph.nodes if n.node_type == "resource"}
    return {
        (e.source, "resource" if e.target in resource else e.target, e.label) for e in graph.edges
    }


def test_the_same_workflow_gives_the_incumbents_nodes_and_edges() -> None:
    ours = get_workflow_representation(OursShop)
    theirs = workflows.representation.get_workflow_representation(TheirShop)

    assert isinstance(ours, WorkflowGraph)
    assert (ours.name, ours.description) == (theirs.name, theirs.description)
    # Resource ids are hashes of different things; the rest is the same.
    assert {s for s in node_summary(ours) if s[0] != "resource"} == {
        s for s in node_summary(theirs) if s[0] != "resource"
    }
    assert edge_summary(ours) == edge_summary(theirs)
    by_id = {n.id: n for n in ours.nodes}
    take, question = by_id["take"], by_id["Question"]
    assert isinstance(take, WorkflowStepNode)
    assert take.description == "Reads the order."
    assert isinstance(question, WorkflowEventNode)
    assert question.event_types == ["Question", "InputRequiredEvent"]
    assert question.produced_by == ["take"]
    assert question.is_subclass_of("InputRequiredEvent")
    assert not question.is_subclass_of("HumanResponseEvent")


def test_a_resource_node_names_its_type_factory_and_source() -> None:
    graph = get_workflow_representation(OursShop())  # an instance: its class
    (resource,) = (n for n in graph.nodes if isinstance(n, WorkflowResourceNode))
    (theirs,) = (
        n
        for n in workflows.representation.get_workflow_representation(TheirShop).nodes
        if n.node_type == "resource"
    )

    assert resource.id.startswith("resource_")
    for field in ("type_name", "getter_name", "description", "source_file", "source_line"):
        assert getattr(resource, field) == getattr(theirs, field), field
    assert resource.type_name == "Database"
    assert resource.description == "Connects to the orders database."
    # anyflow labels a resource with its factory, the incumbent with its type.
    assert resource.label == "open_database"
    assert [e.label for e in graph.edges if e.target == resource.id] == ["db"]


def test_it_is_a_view_of_the_one_graph_anyflow_computes() -> None:
    graph = workflow_graph(OursShop)
    view = get_workflow_representation(OursShop)

    assert view == graph.to_representation()
    assert [n.id for n in view.nodes] == [n.id for n in graph.nodes]
    assert [(e.source, e.target, e.label) for e in view.edges] == [
        (e.source, e.target, e.label) for e in graph.edges
    ]
    assert graph.to_json() == view.model_dump(mode="json")


def test_the_incumbents_module_paths() -> None:
    assert anyflow.representation.build.get_workflow_representation is get_workflow_representation
    assert anyflow.representation.types.WorkflowGraph is WorkflowGraph
    assert set(anyflow.representation.types.__all__) == set(workflows.representation.__all__) - {
        "get_workflow_representation"
    }
    assert set(anyflow.representation.__all__) == set(workflows.representation.__all__)


def test_truncated_label_marks_the_cut() -> None:
    node = WorkflowStepNode(id="s", label="summarize_documents")
    assert node.truncated_label(9) == "summariz*"
    assert node.truncated_label(19) == "summarize_documents"
    assert node.truncated_label(40) == "summarize_documents"


def sample_graph() -> WorkflowGraph:
    return WorkflowGraph(
        name="Sample",
        description="every kind of node",
        nodes=[
            WorkflowStepNode(id="load", label="load", description="Loads."),
            WorkflowEventNode(
                id="Loaded",
                label="Loaded",
                event_type="Loaded",
                event_types=["Loaded", "Base"],
                event_schema={"type": "object", "properties": {}},
                produced_by=["load"],
            ),
            WorkflowExternalNode(id="external_step", label="external_step"),
            WorkflowResourceNode(id="resource_1", label="db", type_name="Db", source_line=3),
            WorkflowResourceConfigNode(
                id="config_1", label="cfg", config_file="c.json", config_value={"a": 1}
            ),
            WorkflowGenericNode(id="agent", label="agent", node_type="agent"),
        ],
        edges=[
            WorkflowGraphEdge(source="load", target="Loaded"),
            WorkflowGraphEdge(source="load", target="resource_1", label="db"),
        ],
    )


def test_model_dump_and_model_validate_round_trip_every_node_kind() -> None:
    graph = sample_graph()
    data = graph.model_dump()

    assert [n["node_type"] for n in data["nodes"]] == [
        "step",
        "event",
        "external",
        "resource",
        "resource_config",
        "agent",
    ]
    assert "event_type" not in data["nodes"][0]
    assert data["edges"][0] == {"source": "load", "target": "Loaded", "label": None}
    restored = WorkflowGraph.model_validate(data)
    assert restored == graph
    assert [type(n) for n in restored.nodes] == [type(n) for n in graph.nodes]
    assert WorkflowGraph.model_validate_json(graph.model_dump_json()) == graph
    assert json.loads(graph.model_dump_json(exclude_none=True))["edges"][0] == {
        "source": "load",
        "target": "Loaded",
    }
    # A dump is a copy: changing it leaves the graph as it was.
    data["nodes"][1]["event_types"].append("X")
    assert graph.nodes[1] == restored.nodes[1]


def test_the_incumbents_pydantic_models_read_our_data_and_we_read_theirs() -> None:
    graph = sample_graph()
    theirs = workflows.representation.WorkflowGraph.model_validate(graph.model_dump())

    assert [n.node_type for n in theirs.nodes] == [n.node_type for n in graph.nodes]
    assert theirs.model_dump() == graph.model_dump()
    assert WorkflowGraph.model_validate(theirs.model_dump(mode="json")) == graph


def test_model_validate_says_what_is_missing_or_wrong() -> None:
    with pytest.raises(ValueError, match=r"^WorkflowEventNode needs the field\(s\) event_types$"):
        WorkflowEventNode.model_validate({"id": "E", "label": "E", "event_type": "E"})
    with pytest.raises(ValueError, match=r"a graph node is a dict with a 'node_type' string"):
        WorkflowGraph.model_validate({"nodes": [{"id": "a", "label": "a"}], "edges": []})
    with pytest.raises(ValueError, match=r"^WorkflowGraph.model_validate takes a dict"):
        WorkflowGraph.model_validate([])
    with pytest.raises(ValueError, match=r"WorkflowStepNode.node_type is always 'step', not 'x'"):
        WorkflowStepNode.model_validate({"id": "a", "label": "a", "node_type": "x"})
    with pytest.raises(TypeError, match=r"'id' must be <class 'str'>"):
        WorkflowStepNode(id=1, label="a")  # type: ignore[arg-type]


def test_generic_nodes_answer_is_subclass_of_from_their_event_types() -> None:
    assert WorkflowGenericNode(
        id="a", label="a", node_type="agent", event_types=("Agent", "Base")
    ).is_subclass_of("Base")
    assert not WorkflowGenericNode(id="a", label="a", node_type="agent").is_subclass_of("Base")
    assert isinstance(WorkflowGenericNode(id="a", label="a", node_type="t"), WorkflowNodeBase)


def chain(*ids: str, labels: dict[str, str] | None = None) -> WorkflowGraph:
    """Steps named s*, events named E*, edges along ``ids`` in order."""
    labels = labels or {}
    nodes: list[Any] = []
    for node_id in dict.fromkeys(ids):
        label = labels.get(node_id, node_id)
        if node_id.startswith("s"):
            nodes.append(WorkflowStepNode(id=node_id, label=label))
        else:
            nodes.append(
                WorkflowEventNode(
                    id=node_id, label=label, event_type=node_id, event_types=[node_id]
                )
            )
    edges = [WorkflowGraphEdge(source=a, target=b) for a, b in itertools.pairwise(ids)]
    return WorkflowGraph(name="C", nodes=nodes, edges=edges, description="d")


def links(graph: WorkflowGraph) -> list[tuple[str, str, str | None]]:
    return [(e.source, e.target, e.label) for e in graph.edges]


def test_filtering_bridges_edges_through_removed_nodes() -> None:
    graph = chain("s1", "E1", "E2", "s2", labels={"E1": "first", "E2": "second"})

    steps_only = graph.filter_by_node_type("event")

    assert [n.id for n in steps_only.nodes] == ["s1", "s2"]
    # The label is the first removed node's.
    assert links(steps_only) == [("s1", "s2", "first")]
    assert (steps_only.name, steps_only.description) == ("C", "d")
    assert len(graph.nodes) == 4, "the graph itself is unchanged"


def test_filtering_keeps_direct_edges_and_their_labels_and_draws_each_pair_once() -> None:
    graph = WorkflowGraph(
        nodes=[
            WorkflowStepNode(id="s1", label="s1"),
            WorkflowStepNode(id="s2", label="s2"),
            WorkflowEventNode(id="A", label="A", event_type="A", event_types=["A"]),
            WorkflowEventNode(id="B", label="B", event_type="B", event_types=["B"]),
            WorkflowResourceNode(id="r", label="r"),
        ],
        edges=[
            WorkflowGraphEdge(source="s1", target="A"),
            WorkflowGraphEdge(source="s1", target="B"),
            WorkflowGraphEdge(source="A", target="s2"),
            WorkflowGraphEdge(source="B", target="s2"),
            WorkflowGraphEdge(source="s1", target="r", label="db"),
            WorkflowGraphEdge(source="s2", target="s1"),
        ],
    )

    # Edges come grouped by their source, in node order.
    assert links(graph.filter_by_node_type("event")) == [
        ("s1", "s2", "A"),
        ("s1", "r", "db"),
        ("s2", "s1", None),
    ]
    assert links(graph.filter_by_node_type("event", "resource")) == [
        ("s1", "s2", "A"),
        ("s2", "s1", None),
    ]
    unchanged = graph.filter_by_node_type("nothing")
    assert unchanged.nodes == graph.nodes
    assert sorted(links(unchanged), key=str) == sorted(links(graph), key=str)


def test_filtering_a_cycle_of_removed_nodes_ends() -> None:
    graph = chain("s1", "E1", "E2", "E1", "s2")
    assert links(graph.filter_by_node_type("event")) == [("s1", "s2", "E1")]


def test_filtering_a_real_workflow_gives_step_to_step_edges() -> None:
    steps = get_workflow_representation(OursShop).filter_by_node_type("event", "resource")
    assert {(s, t) for s, t, _ in links(steps)} == {
        ("take", "ship"),
        ("take", "external_step"),
        ("external_step", "confirm"),
        ("ship", "done"),
        ("confirm", "done"),
    }


_IN_A_FRESH_PROCESS = """
import sys
from anyflow import StartEvent, StopEvent, Workflow, step
from anyflow.representation import get_workflow_representation, WorkflowGraph

class One(Workflow):
    @step
    async def only(self, ev: StartEvent) -> StopEvent:
        return StopEvent()

data = get_workflow_representation(One).model_dump()
assert WorkflowGraph.model_validate(data).nodes[0].id == "only"
print(sorted({m.split(".")[0] for m in sys.modules} & {"pydantic", "workflows"}))
"""


def test_the_representation_needs_no_pydantic() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IN_A_FRESH_PROCESS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


# -- resources made from other resources, and configs ---------------------------


class Settings:
    """What the settings file holds (read as a plain dict here)."""


class Pool:
    pass


OURS = types.SimpleNamespace(
    **{**vars(anyflow), "ResourceConfig": anyflow.resources.ResourceConfig}
)


def define_pooled(lib: Any, config_file: str) -> type[Any]:
    """A step takes a pool, whose factory takes a config: three nodes, two edges."""
    settings = lib.ResourceConfig(
        config_file=config_file, path_selector="db", description="Database settings."
    )

    def connect(settings: Any) -> Pool:
        """Opens the pool."""
        return Pool()

    # Real objects, not strings: this module defers its annotations.
    connect.__annotations__ = {"settings": Annotated[dict, settings], "return": Pool}

    class Pooled(lib.Workflow):
        @lib.step
        async def query(
            self, ev: lib.StartEvent, pool: Annotated[Pool, lib.Resource(connect)]
        ) -> lib.StopEvent:
            return lib.StopEvent(result="ok")

    return Pooled


def test_a_factorys_own_resources_and_configs_are_nodes_as_in_the_incumbent(
    tmp_path: Any,
) -> None:
    config_file = tmp_path / "settings.json"
    config_file.write_text(json.dumps({"db": {"url": "sqlite://"}, "other": 1}))
    ours = get_workflow_representation(define_pooled(OURS, str(config_file)))
    theirs = workflows.representation.get_workflow_representation(
        define_pooled(
            types.SimpleNamespace(
                **{name: getattr(workflows.events, name) for name in dir(workflows.events)},
                Workflow=workflows.Workflow,
                step=workflows.step,
                Resource=workflows.resource.Resource,
                ResourceConfig=workflows.resource.ResourceConfig,
            ),
            str(config_file),
        )
    )

    def described(graph: Any) -> tuple[list[dict[str, Any]], set[tuple[str, str, str | None]]]:
        """Resource nodes without their ids (hashes of different things), and
        edges with ids replaced by labels."""
        label = {n.id: n.label for n in graph.nodes}
        kinds = ("resource", "resource_config")
        nodes = [
            {k: v for k, v in n.model_dump().items() if k not in ("id", "label")}
            for n in graph.nodes
            if n.node_type in kinds
        ]
        edges = {(label[e.source], label[e.target], e.label) for e in graph.edges}
        return sorted(nodes, key=str), edges

    (pool, config), edges = described(ours)
    assert (pool, config) == tuple(described(theirs)[0])
    assert config == {
        "node_type": "resource_config",
        "type_name": "dict",
        "config_file": str(config_file),
        "path_selector": "db",
        "config_schema": None,
        "config_value": {"url": "sqlite://"},
        "description": "Database settings.",
    }
    assert pool["type_name"] == "Pool"
    assert pool["description"] == "Opens the pool."
    # The labels differ (anyflow: the factory; the incumbent: the type), not the edges.
    assert edges == {
        ("StartEvent", "query", None),
        ("query", "StopEvent", None),
        ("query", "connect", "pool"),
        ("connect", "dict", "settings"),
    }
    assert {(s, t, lbl) for s, t, lbl in described(theirs)[1]} == {
        ("StartEvent", "query", None),
        ("query", "StopEvent", None),
        ("query", "Pool", "pool"),
        ("Pool", "dict", "settings"),
    }


def test_a_config_that_cannot_be_read_is_still_drawn(tmp_path: Any) -> None:
    config_file = tmp_path / "settings.json"
    config_file.write_text("{}")
    workflow = define_pooled(OURS, str(config_file))
    config_file.unlink()

    graph = workflow_graph(workflow)
    (config,) = (n for n in graph.nodes if n.node_type == "resource_config")
    assert config.config_value is None
    assert config.label == "dict"
    assert "resource_config" in mermaid(graph)
