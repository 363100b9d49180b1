"""``anyflow runs list|show`` and ``anyflow replay``: what a durable store
recorded, read without taking any run's lease (a live run can be looked at)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import attrs

from ..durable import open_store
from ..durable.journal import decode_record
from ..errors import AnyflowError
from ..targets import TargetError
from ..testing import describe, replay_journal
from ._errors import CliError

if TYPE_CHECKING:
    from rich.console import Console

    from ..durable import RunRecord, Store
    from ..graph import RunGraph
    from ..runtime.vocabulary import RunState
    from ..workflow import Workflow

__all__ = ["list_runs", "read_run_graph", "replay_run", "show_run"]


def _store(url: str) -> Store:
    try:
        return open_store(url, existing=True)
    except TargetError as exc:
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(str(exc)) from None


async def _record(store: Store, run_id: str) -> RunRecord:
    record = await store.get_run(run_id)
    if record is None:
        known = [r.run_id for r in await store.list_runs()][-5:]
        hint = f" (latest: {', '.join(known)})" if known else " (it has no runs)"
        raise CliError(f"the store has no run {run_id!r}: see `anyflow runs list`{hint}")
    return record


def _when(record: RunRecord) -> str:
    return record.updated_at.strftime("%Y-%m-%d %H:%M:%S")


async def list_runs(url: str, console: Console) -> None:
    from rich.table import Table

    async with _store(url) as store:
        runs = await store.list_runs()
    if not runs:
        console.print("no runs recorded")
        return
    if not console.is_terminal:  # piped: one plain line per run, for scripts
        for r in runs:
            console.print(f"{r.run_id}  {r.status}  {r.workflow}  {_when(r)}", highlight=False)
        return
    table = Table("run id", "workflow", "status", "created (UTC)", "updated (UTC)")
    for r in runs:
        table.add_row(
            r.run_id, r.workflow, r.status, r.created_at.strftime("%Y-%m-%d %H:%M:%S"), _when(r)
        )
    console.print(table)


def _summary(data: dict[str, Any]) -> str:
    """A recorded event or tick in one line, read from its JSON (no import of its class)."""
    parts = []
    for key, value in data.items():
        if key in ("tick", "now"):
            continue
        if isinstance(value, dict) and "__anyflow_event__" in value:
            value = value["__anyflow_event__"].rpartition(":")[2]
        text = json.dumps(value) if not isinstance(value, str) else value
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return " ".join(parts)


async def show_run(url: str, run_id: str, console: Console) -> None:
    async with _store(url) as store:
        record = await _record(store, run_id)
        events = await store.read_events(run_id)
        ticks = await store.read_ticks(run_id)
    console.print(f"[bold]run[/] {record.run_id}", highlight=False)
    console.print(f"  workflow: {record.workflow}", highlight=False)
    console.print(f"  status:   {record.status}", highlight=False)
    console.print(f"  created:  {record.created_at.isoformat()}", highlight=False)
    console.print(f"  updated:  {record.updated_at.isoformat()}", highlight=False)
    console.print(f"  ticks:    {len(ticks)}", highlight=False)
    console.print(f"[bold]events[/] ({len(events)})", highlight=False)
    for seq, text in events:
        data = decode_record(text, run_id, "event", seq)
        name = data.get("__anyflow_event__", "?").rpartition(":")[2]
        console.print(f"  {seq:>3} {name} {_summary(data.get('fields', {}))}", highlight=False)


async def replay_run(
    url: str, run_id: str, workflow: Workflow | None, to_tick: int | None, console: Console
) -> None:
    if to_tick is not None and to_tick < 0:
        raise CliError(f"--to-tick counts ticks from 0, so {to_tick} is none: pass 0 or more")
    async with _store(url) as store:
        record = await _record(store, run_id)
        if workflow is None:
            ticks = await store.read_ticks(run_id)
            console.print(
                f"run {run_id} of {record.workflow} ({record.status}), {len(ticks)} ticks; "
                f"pass --workflow {record.workflow} to see the state after each",
                highlight=False,
            )
            start: float | None = None
            for seq, text in ticks[: None if to_tick is None else to_tick + 1]:
                data = decode_record(text, run_id, "tick", seq)
                now = float(data.get("now", 0))
                start = now if start is None else start
                console.print(
                    f"tick {seq} {data.get('tick', '?')} at +{now - start:.3f}s {_summary(data)}",
                    highlight=False,
                )
            return
        try:
            replayed = await replay_journal(store, run_id, workflow)
        except (AnyflowError, ValueError) as exc:
            # from None: the command prints the message alone; a traceback is for bugs
            raise CliError(
                f"cannot replay run {run_id!r} with {type(workflow).__name__}: {exc} "
                f"(it was recorded by {record.workflow})"
            ) from None
    last = len(replayed) - 1 if to_tick is None else min(to_tick, len(replayed) - 1)
    console.print(
        f"run {run_id} of {record.workflow} ({record.status}), {len(replayed)} ticks",
        highlight=False,
    )
    origin = replayed[0].tick.now if len(replayed) else 0.0
    for index in range(last + 1):
        step = replayed[index]
        console.print(
            f"after tick {index} {type(step.tick).__name__} at "
            f"{_since(step.tick.now, origin)}:\n{_describe(step.state, origin)}",
            highlight=False,
        )
        for command in step.commands:
            console.print(f"    → {type(command).__name__}", highlight=False)


def _since(when: float, origin: float) -> str:
    """A tick's time as the run's clock reads it: seconds since its first tick
    (epoch seconds tell a reader nothing)."""
    return f"+{when - origin:.3f}s"


_TIME = re.compile(r"\bt=(-?[0-9.]+(?:e[+-]?[0-9]+)?)")


def _describe(state: RunState, origin: float) -> str:
    """``describe``'s lines, with every time in them counted from ``origin``.

    The times are shifted in the state, then described, so each is printed
    from its exact value (``describe``'s ``t=1.79564e+09`` has lost the
    fractions of a second by then)."""

    def shift(when: float | None) -> float | None:
        return None if when is None else when - origin

    shifted = attrs.evolve(
        state,
        deadline=shift(state.deadline),
        waiting={k: attrs.evolve(w, deadline=shift(w.deadline)) for k, w in state.waiting.items()},
        retries={k: attrs.evolve(w, deadline=shift(w.deadline)) for k, w in state.retries.items()},
    )
    return _TIME.sub(lambda m: _since(float(m.group(1)), 0.0), describe(shifted))


async def read_run_graph(url: str, run_id: str, workflow: Workflow) -> RunGraph:
    """Run ``run_id`` of the store at ``url``, laid over ``workflow``'s graph."""
    from ..graph import recorded_run_graph

    async with _store(url) as store:
        record = await _record(store, run_id)
        cls = type(workflow)
        if record.workflow.rpartition(":")[2] != cls.__qualname__:
            raise CliError(
                f"run {run_id!r} is a run of {record.workflow}, not of {cls.__qualname__}: "
                f"draw it with its own workflow (TARGET {record.workflow})"
            )
        try:
            return await recorded_run_graph(store, run_id, workflow)
        except (AnyflowError, ValueError) as exc:
            # from None: the command prints the message alone; a traceback is for bugs
            raise CliError(f"cannot draw run {run_id!r}: {exc}") from None
