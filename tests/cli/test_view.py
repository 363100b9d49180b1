"""The live view on a terminal: the lines, and a table of the steps under them."""

from __future__ import annotations

import io

import anyio
from rich.console import Console

from anyflow import Event
from anyflow.cli._view import LiveView

from .flows import Hello
from .runflows import Quiet


class Odd(Event):
    text: str


def test_on_a_terminal_a_table_of_steps_follows_the_run() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=100)

    async def watch() -> None:
        async with Hello().run(name="Ada") as handler:
            with LiveView(console, list(Hello.steps())) as view:
                async for event in handler.stream_events(expose_internal=True):
                    view.show(event)
                view.show(Odd(text="[bold]not markup[/bold]"))

    anyio.run(watch)
    text = out.getvalue()
    assert "▶ compose#0 on Greet" in text
    assert "✓ finish#1 → StopEvent" in text
    assert "event Odd(text='[bold]not markup[/bold]')" in text
    # The table's last drawing: each step done once, and what it returned.
    last = text.rsplit("step", 1)[1].split()
    assert last[: last.index("compose")] == ["running", "done", "failed", "last", "returned"]
    assert last[last.index("compose") :][:5] == ["compose", "-", "1", "0", "Greeting"]
    assert last[last.index("finish") :][:5] == ["finish", "-", "1", "0", "StopEvent"]


async def test_a_failed_attempt_and_one_that_returned_nothing_look_different() -> None:
    out = io.StringIO()
    console = Console(file=out, color_system=None, width=100)
    async with Quiet().run() as handler:
        with LiveView(console, list(Quiet.steps())) as view:
            async for event in handler.stream_events(expose_internal=True):
                view.show(event)
    lines = out.getvalue().splitlines()
    assert "✓ send#0 → nothing" in lines
    assert "✗ flaky#1 raised ConnectionError" in lines
    assert "✓ flaky#2 → StopEvent" in lines
