"""The records a run's DBOS workflow holds (``anyflow.dbos._records``): written
with their keys in a fixed order, the optional ones only when set, and read
back strictly, a bad one named by its record and the JSON path of what is
wrong.  No DBOS needed: these are the records' texts (tests/golden pins the
bytes of real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anyflow import StopEvent
from anyflow.dbos._records import Batch, End, Receive, read_end, read_step, write
from anyflow.dbos._run import decode_ticks
from anyflow.durable.journal import encode_record
from anyflow.errors import DurabilityError, JournalCorruptError
from anyflow.runtime.vocabulary import Completed, StepCompleted
from anyflow.serialization import encode_event, encode_tick

TICK = encode_tick(StepCompleted(worker_id=0, output=None, now=1.5))
EVENT = encode_event(StopEvent(result=1))


def test_a_batch_writes_only_what_it_holds_in_a_fixed_order() -> None:
    assert write(Batch(t=(TICK,))) == encode_record({"t": [TICK]})
    full = Batch(t=(TICK,), e=(EVENT,), m=0, f={"workflow": "w"}, s={"n": 1})
    text = encode_record({"t": [TICK], "e": [EVENT], "m": 0, "f": {"workflow": "w"}, "s": {"n": 1}})
    assert write(full) == text
    assert read_step(text, "r", 0) == full
    assert read_step(write(Receive()), "r", 1) == Receive()
    # A record written before a batch held anything but its ticks.
    assert read_step(encode_record({}), "r", 2) == Batch()


def test_every_golden_record_is_written_again_as_the_same_text() -> None:
    golden = Path(__file__).parent.parent / "golden" / "dbos_records.json"
    runs = json.loads(golden.read_text(encoding="utf-8"))
    steps = [
        text for run in runs.values() for name, text in run["steps"] if name == "anyflow.record"
    ]
    assert any("recv" in text for text in steps)
    for seq, text in enumerate(steps):
        assert write(read_step(text, "golden", seq)) == text
    ends = [run["output"] for run in runs.values() if run["output"] is not None]
    assert ends
    for text in ends:
        assert write(read_end(text, "golden")) == text


def test_an_end_holds_its_outcome_and_events() -> None:
    end = End(Completed(StopEvent(result=1)), (EVENT,))
    text = write(end)
    assert text == encode_record({"o": {"status": "completed", "stop_event": EVENT}, "e": [EVENT]})
    assert read_end(text, "r") == end


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"t": [], "m": "2"}, r"^batch record 3 of run 'r': \$\.m has a str, which does not fit$"),
        ({"t": [], "f": [1]}, r"^batch record 3 of run 'r': \$\.f has a list"),
        ({"t": "ab"}, r"^batch record 3 of run 'r': \$\.t must be a list, not str$"),
        ({"t": [], "x": 1}, r"^batch record 3 of run 'r': unknown fields of Batch at \$: \['x'\]$"),
        ([1], r"^batch record 3 of run 'r' is not a batch$"),
    ],
)
def test_a_bad_batch_names_its_record_and_path(data: object, message: str) -> None:
    with pytest.raises(JournalCorruptError, match=message):
        read_step(encode_record(data), "r", 3)


def test_a_bad_tick_is_named_by_its_path_when_the_ticks_are_read() -> None:
    batch = read_step(encode_record({"t": [TICK, {}]}), "r", 3)
    assert isinstance(batch, Batch)
    with pytest.raises(
        DurabilityError, match=r"^batch record 3 of run 'r': expected a tick at \$\.t\[1\]"
    ):
        decode_ticks(batch.t, "r", 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"e": []}, r"missing \$\.o$"),
        ({"o": {"status": "failed", "error": {"type": 1}}, "e": []}, r"missing \$\.o\.step$"),
        (
            {"o": {"status": "completed", "stop_event": {}}},
            r"expected an event .* at \$\.o\.stop_event",
        ),
    ],
)
def test_a_bad_end_names_its_path(data: object, message: str) -> None:
    unreadable = r"^the outcome record of run 'r' is unreadable: "
    with pytest.raises(JournalCorruptError, match=unreadable + message):
        read_end(encode_record(data), "r")
