"""Dispatch tables are complete: every tick has a handler, every command an executor.

The shape of trio's ``test_core_is_properly_reexported``: the unions in
``ticks.py`` and ``commands.py`` are the source of truth, and the tables that
dispatch on them must cover exactly those types.
"""

from __future__ import annotations

import typing

from anyflow._core import commands, reducer, ticks
from anyflow.runtime._driver import _EXECUTORS


def test_tick_union_is_nonempty_and_made_of_classes() -> None:
    members = typing.get_args(ticks.Tick)
    assert len(members) >= 7
    assert all(isinstance(member, type) for member in members)


def test_every_tick_has_a_handler() -> None:
    missing = [t.__name__ for t in typing.get_args(ticks.Tick) if t not in reducer._HANDLERS]
    assert not missing, f"ticks without a handler in reducer._HANDLERS: {missing}"


def test_every_handler_is_for_a_tick() -> None:
    members = set(typing.get_args(ticks.Tick))
    extra = [t.__name__ for t in reducer._HANDLERS if t not in members]
    assert not extra, f"reducer._HANDLERS has handlers for non-Tick types: {extra}"


def test_handlers_are_callable() -> None:
    assert all(callable(handler) for handler in reducer._HANDLERS.values())


def test_every_command_has_an_executor() -> None:
    missing = [c.__name__ for c in typing.get_args(commands.Command) if c not in _EXECUTORS]
    assert not missing, f"commands without an executor in runtime._driver._EXECUTORS: {missing}"


def test_every_executor_is_for_a_command() -> None:
    members = set(typing.get_args(commands.Command))
    extra = [c.__name__ for c in _EXECUTORS if c not in members]
    assert not extra, f"_EXECUTORS has executors for non-Command types: {extra}"
