from __future__ import annotations

import pickle

import anyflow
import anyflow.client
import anyflow.context
import anyflow.durable
import anyflow.durable.journal
import anyflow.graph
import anyflow.representation
import anyflow.representation.types
import anyflow.runtime
import anyflow.runtime.clock
import anyflow.runtime.vocabulary
import anyflow.serialization.records
import anyflow.server
import anyflow.targets
import anyflow.testing
import anyflow.testing.runner
import anyflow.utils


def test_all_lists_exactly_the_public_names_sorted() -> None:
    modules = (
        anyflow,
        anyflow.client,
        anyflow.context,
        anyflow.durable,
        anyflow.durable.journal,
        anyflow.graph,
        anyflow.representation,
        anyflow.representation.types,
        anyflow.runtime,
        anyflow.runtime.clock,
        anyflow.runtime.vocabulary,
        anyflow.serialization.records,
        anyflow.server,
        anyflow.targets,
        anyflow.testing,
        anyflow.testing.runner,
        anyflow.utils,
    )
    for module in modules:
        public = {name for name in vars(module) if not name.startswith("_")}
        public -= {"annotations"}  # from __future__
        submodules = {name for name in public if type(getattr(module, name)) is type(anyflow)}
        assert sorted(module.__all__) == sorted(public - submodules), module.__name__
    assert anyflow.__all__ == sorted(anyflow.__all__)


def test_type_hints_of_subclassed_events_resolve() -> None:
    # Keeping each class's real __module__ keeps typing.get_type_hints working
    # for users' subclasses (and for anyflow's own serializer).
    import typing

    class Mine(anyflow.StartEvent):
        n: int

    hints = typing.get_type_hints(Mine)
    assert hints["n"] is int


def test_events_pickle_by_their_public_name() -> None:
    event = anyflow.StopEvent(result=[1, 2])
    assert pickle.loads(pickle.dumps(event)) == event
