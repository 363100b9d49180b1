"""Writes ``records.json`` from ``samples``: run once, with the codecs the
golden tests guard (see ``samples``'s docstring: never to make a test pass).

    python -m tests.golden.write_records
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import anyio

from anyflow import BasicRuntime, HumanResponseEvent, InputRequiredEvent
from anyflow.durable import DurableRuntime, SqliteStore
from anyflow.durable.journal import decode_outcome, encode_outcome, encode_record
from anyflow.serialization import decode_state, decode_tick, encode_state, encode_tick

from . import flows, samples

HERE = Path(__file__).parent


def _body(record: str) -> Any:
    return json.loads(record.partition(":")[2])


def main() -> None:
    out: dict[str, dict[str, Any]] = {"ticks": {}, "outcomes": {}, "states": {}}
    for name, tick in samples.ticks().items():
        record = encode_record(encode_tick(tick))
        out["ticks"][name] = {
            "record": record,
            "decoded": samples.describe(decode_tick(_body(record))),
        }
    for name, outcome in samples.outcomes().items():
        record = encode_record(encode_outcome(outcome))
        out["outcomes"][name] = {
            "record": record,
            "decoded": samples.describe(decode_outcome(record, "golden")),
        }
    for name, state in samples.states().items():
        record = encode_record(encode_state(state))
        out["states"][name] = {
            "record": record,
            "decoded": samples.describe(decode_state(_body(record), state.spec)),
        }
    out["journal"] = anyio.run(_journal)
    out["context"] = {"waiting": anyio.run(_saved_context)}
    text = json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True)
    (HERE / "records.json").write_text(text + "\n", encoding="utf-8")


async def _answer_and_finish(handler: Any, answer: str | None) -> None:
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            if answer is None:
                return
            await handler.send_event(HumanResponseEvent(response=answer))


async def _journal() -> dict[str, Any]:
    """Two runs of ``flows.Shop`` in a SQLite store, as its tables hold them:
    ``shipped`` finished, ``waiting`` stopped while it waits for its answer."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        async with DurableRuntime(SqliteStore(str(path))) as runtime:
            handler = flows.Shop().run(run_id="shipped", runtime=runtime, lines=3)
            await _answer_and_finish(handler, "yes")
            await handler
            handler = flows.Shop().run(run_id="waiting", runtime=runtime, lines=3)
            await _answer_and_finish(handler, None)
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            return {
                table: [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
                for table in ("runs", "ticks", "events")
            }


async def _saved_context() -> Any:
    """``ctx.to_dict()`` of a ``flows.Shop`` run waiting for its answer."""
    async with BasicRuntime() as runtime:
        handler = flows.Shop().run(runtime=runtime, lines=3)
        await _answer_and_finish(handler, None)
        await anyio.wait_all_tasks_blocked()
        data = handler.ctx.to_dict()
        await handler.cancel_run()
    return json.loads(json.dumps(data))


if __name__ == "__main__":
    main()
