"""The journal's and the saved context's records, pinned: the same objects are
written as the same text, and that text reads back as the same objects.

``records.json`` was written by the codecs as they were before they moved
onto the cattrs converter (see ``samples``); ticks, outcomes and run states
already on disk are those bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from anyflow import HumanResponseEvent, InputRequiredEvent
from anyflow.durable.journal import decode_outcome, encode_outcome, encode_record
from anyflow.serialization import decode_state, decode_tick, encode_state, encode_tick

from . import flows, samples

GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parent / "records.json").read_text(encoding="utf-8")
)


def _body(record: str) -> Any:
    return json.loads(record.partition(":")[2])


def test_every_sample_has_its_record() -> None:
    assert set(GOLDEN["ticks"]) == set(samples.ticks())
    assert set(GOLDEN["outcomes"]) == set(samples.outcomes())
    assert set(GOLDEN["states"]) == set(samples.states())


@pytest.mark.parametrize("name", sorted(samples.ticks()))
def test_a_tick_is_written_and_read_as_before(name: str) -> None:
    golden = GOLDEN["ticks"][name]
    assert encode_record(encode_tick(samples.ticks()[name])) == golden["record"]
    assert samples.describe(decode_tick(_body(golden["record"]))) == golden["decoded"]


@pytest.mark.parametrize("name", sorted(samples.outcomes()))
def test_an_outcome_is_written_and_read_as_before(name: str) -> None:
    golden = GOLDEN["outcomes"][name]
    assert encode_record(encode_outcome(samples.outcomes()[name])) == golden["record"]
    assert samples.describe(decode_outcome(golden["record"], "golden")) == golden["decoded"]


@pytest.mark.parametrize("name", sorted(samples.states()))
def test_a_run_state_is_written_and_read_as_before(name: str) -> None:
    golden = GOLDEN["states"][name]
    state = samples.states()[name]
    assert encode_record(encode_state(state)) == golden["record"]
    decoded = decode_state(_body(golden["record"]), state.spec)
    assert samples.describe(decoded) == golden["decoded"]
    assert encode_record(encode_state(decoded)) == golden["record"]


# A journal and a saved context as anyflow wrote them.


def _restore_sqlite(path: Path) -> None:
    import sqlite3

    rows = GOLDEN["journal"]
    with sqlite3.connect(path) as db:
        for table, records in rows.items():
            for record in records:
                names = ", ".join(record)
                marks = ", ".join("?" * len(record))
                db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(record.values()))


def test_the_journal_records_read_back_and_are_written_again_as_they_were() -> None:
    from anyflow.durable.journal import decode_record
    from anyflow.serialization import decode_event, encode_event

    journal: Any = GOLDEN["journal"]
    for row in journal["ticks"]:
        tick = decode_tick(decode_record(row["record"], row["run_id"], "tick", row["seq"]))
        assert encode_record(encode_tick(tick)) == row["record"]
    for row in journal["events"]:
        event = decode_event(decode_record(row["record"], row["run_id"], "event", row["seq"]))
        assert encode_record(encode_event(event)) == row["record"]
    for row in journal["runs"]:
        if row["outcome"] is not None:
            outcome = decode_outcome(row["outcome"], row["run_id"])
            assert encode_record(encode_outcome(outcome)) == row["outcome"]


@pytest.mark.anyio
async def test_a_journal_written_before_loads_and_its_waiting_run_finishes(
    tmp_path: Path,
) -> None:
    from anyflow.durable import DurableRuntime, SqliteStore

    path = tmp_path / "journal.db"
    async with SqliteStore(str(path)) as store:
        await store.ping()  # creates the schema
    _restore_sqlite(path)
    attempts = dict(flows.ATTEMPTS)
    async with DurableRuntime(SqliteStore(str(path))) as runtime:
        runs = {r.run_id: r.status for r in await runtime.list_runs()}
        assert runs == {"shipped": "completed", "waiting": "running"}
        # A finished run is its recorded result; nothing runs again.
        assert await flows.Shop().run(run_id="shipped", runtime=runtime) == {
            "packed": 0,
            "answer": "yes",
        }
        handler = flows.Shop().run(run_id="waiting", runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                await handler.send_event(HumanResponseEvent(response="no"))
        assert await handler == {"packed": 0, "answer": "no"}
    assert attempts == flows.ATTEMPTS  # pack's results were recorded


@pytest.mark.anyio
async def test_a_context_saved_before_loads_and_its_run_finishes() -> None:
    from anyflow import Context

    data: Any = GOLDEN["context"]["waiting"]
    assert encode_state(decode_state(data["run"], flows.Shop()._spec)) == data["run"]
    ctx = Context.from_dict(flows.Shop(), data)
    async with flows.Shop().run(ctx=ctx) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="later"))
        assert await handler == {"packed": 0, "answer": "later"}
