"""Modules named after llama-index-workflows' internals: what imports, what is
refused on use (and how it says so), and the two context utilities."""

from __future__ import annotations

import typing

import pytest

from anyflow.context.utils import get_qualified_name, import_module_from_qualified_name
from anyflow.runtime import Runtime


def test_internal_names_import_and_refuse_to_be_built_or_read() -> None:
    from anyflow.runtime.types.internal_state import BrokerState, EventAttempt
    from anyflow.runtime.types.step_id import StepId
    from anyflow.runtime.types.ticks import TickAddEvent

    with pytest.raises(
        NotImplementedError, match=r"internal_state\.BrokerState .*ctx\.run_state\(\)"
    ):
        BrokerState.from_workflow(object())
    with pytest.raises(NotImplementedError, match=r"EventAttempt .*no counterpart in anyflow"):
        EventAttempt(attempts=1)
    with pytest.raises(NotImplementedError, match=r"TickAddEvent .*anyflow\.runtime\.vocabulary"):
        TickAddEvent(event=None)
    with pytest.raises(NotImplementedError, match="a plain string"):
        StepId("a")
    assert not isinstance(object(), BrokerState)


def test_a_name_the_incumbent_never_had_is_an_import_error() -> None:
    with pytest.raises(ImportError, match="TickNobodyWrote"):
        from anyflow.runtime.types.ticks import TickNobodyWrote  # noqa: F401


def test_the_plugin_module_is_anyflows_runtime_interface() -> None:
    from anyflow.runtime.types import plugin

    assert plugin.Runtime is Runtime
    with pytest.raises(NotImplementedError, match=r"anyflow\.runtime\.Runtime"):
        plugin.WorkflowSet()


def test_qualified_names_go_both_ways() -> None:
    class Local:
        pass

    assert get_qualified_name(Local()) == f"{__name__}.Local"
    assert import_module_from_qualified_name("typing.Any") is typing.Any


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("nodot", ValueError, "format 'module.attribute'"),
        ("", ValueError, "format 'module.attribute'"),
        ("__nowhere__.x", ImportError, "Failed to import module __nowhere__"),
        (
            "typing.nothing_here",
            AttributeError,
            "Attribute nothing_here not found in module typing",
        ),
    ],
)
def test_a_bad_qualified_name_says_which_part_is_wrong(
    name: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        import_module_from_qualified_name(name)


def test_a_value_without_a_module_is_named_in_the_error() -> None:
    with pytest.raises(AttributeError, match="Object 3 does not have required attributes"):
        get_qualified_name(3)
