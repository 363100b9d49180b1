"""The live view of ``anyflow run``: a line per step attempt starting or
ending and per event published and, on a terminal, a table of the steps
below them that changes as the run goes (rich's ``Live``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import attrs
from rich.markup import escape

from ..events import InputRequiredEvent, StepStateChanged, StopEvent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from ..events import Event

__all__ = ["LiveView"]


@attrs.define
class _Step:
    running: set[int] = attrs.Factory(set)
    done: int = 0
    failed: int = 0
    last_output: str = ""


class LiveView:
    """Shows the events of one run on ``console``; use as a context manager."""

    def __init__(self, console: Console, step_names: list[str]) -> None:
        self._console = console
        self._steps = {name: _Step() for name in step_names}
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self._console.is_terminal:
            from rich.live import Live

            self._live = Live(self._table(), console=self._console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.__exit__(exc_type, exc, tb)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The table stands aside (a question is asked on the terminal)."""
        if self._live is None:
            yield
            return
        self._live.stop()
        try:
            yield
        finally:
            self._live.start(refresh=True)

    def _table(self) -> Table:
        from rich.table import Table

        table = Table("step", "running", "done", "failed", "last returned", box=None)
        for name, step in self._steps.items():
            running = ", ".join(f"#{w}" for w in sorted(step.running))
            table.add_row(
                f"[cyan]{escape(name)}[/]" if step.running else escape(name),
                running or "-",
                str(step.done),
                f"[red]{step.failed}[/]" if step.failed else "0",
                step.last_output,
            )
        return table

    def show(self, event: Event) -> None:
        """One line for ``event`` and, on a terminal, the table brought up to date."""
        if isinstance(event, StepStateChanged):
            step = self._steps.setdefault(event.name, _Step())
            if event.step_state == "running":
                step.running.add(event.worker_id)
                self._console.print(
                    f"[cyan]▶ {escape(event.name)}[/]#{event.worker_id} on "
                    f"{escape(event.input_event_name)}"
                )
            else:
                step.running.discard(event.worker_id)
                attempt = f"{escape(event.name)}#{event.worker_id}"
                if event.exception_type is not None:
                    step.failed += 1
                    self._console.print(
                        f"[red]✗[/] {attempt} raised {escape(event.exception_type)}"
                    )
                else:  # returned: an event, or nothing (a step that sent its events)
                    step.done += 1
                    out = event.output_event_name or "nothing"
                    step.last_output = out
                    self._console.print(f"[green]✓[/] {attempt} → {escape(out)}")
        elif not isinstance(event, StopEvent | InputRequiredEvent):  # questions: see _answers
            self._console.print(f"  [magenta]event[/] {escape(repr(event))}")
        if self._live is not None:
            self._live.update(self._table())
