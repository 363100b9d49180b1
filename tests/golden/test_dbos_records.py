"""What DBOSRuntime recorded of two runs of ``flows.Shop`` (``dbos_records.json``,
written once: see ``samples``): every record still reads, the ticks and the
outcome in it are written again as the same text, and the ticks replay to
where the runs were.  No DBOS needed: these are the records' contents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from anyflow import StopEvent
from anyflow.durable.journal import (
    decode_outcome,
    decode_record,
    encode_outcome,
    encode_record,
    replay_ticks,
)
from anyflow.runtime.vocabulary import Completed, RunStatus, Tick
from anyflow.serialization import decode_event, decode_tick, encode_event, encode_tick

from . import flows

RUNS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "dbos_records.json").read_text(encoding="utf-8")
)


def _ticks(run: dict[str, Any]) -> list[Tick]:
    ticks: list[Tick] = []
    for seq, (name, output) in enumerate(run["steps"]):
        if name != "anyflow.record" or output is None:
            continue
        batch = decode_record(output, "golden", "batch", seq)
        for i, data in enumerate(batch.get("t", ())):
            tick = decode_tick(data, f"$.t[{i}]")
            assert encode_tick(tick) == data
            ticks.append(tick)
        for data in batch.get("e", ()):
            assert encode_event(decode_event(data)) == data
    return ticks


@pytest.mark.parametrize("run_id", ["shipped", "waiting"])
def test_every_dbos_record_reads_and_its_ticks_are_written_again_alike(run_id: str) -> None:
    run = RUNS[run_id]
    start = decode_record(run["input"][2], run_id, "start", 0)
    assert encode_event(decode_event(start)) == start
    # A message from a follower is a tick as plain JSON.
    for name, output in run["steps"]:
        if name == "DBOS.recv" and output is not None:
            assert json.dumps(encode_tick(decode_tick(json.loads(output)))) == output
    state = replay_ticks(run_id, flows.Shop()._spec, _ticks(run))
    if run_id == "waiting":
        assert state.status is RunStatus.RUNNING
        assert [w.step for w in state.waiting.values()] == ["approve"]
        return
    end = decode_record(run["output"], run_id, "outcome", 0)
    outcome = decode_outcome(encode_record(end["o"]), run_id)
    assert encode_outcome(outcome) == end["o"]
    assert outcome == state.outcome == Completed(StopEvent(result={"packed": 0, "answer": "yes"}))
