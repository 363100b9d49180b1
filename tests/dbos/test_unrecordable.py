"""A value DBOSRuntime could not record is refused in the caller, at once,
as ``DurableRuntime`` refuses it (tests/durable/test_unrecordable.py): a start
event before anything is started in DBOS, an event sent to a run (by the
handler that executes it, or by a follower) before it is sent, and the run
goes on as if it never came."""

from __future__ import annotations

import pytest

from anyflow.dbos import DBOSRuntime
from anyflow.errors import ContextSerdeError
from tests.durable.test_unrecordable import Reply, Wait, nested

UNRECORDABLE = [
    (float("inf"), r"inf at .* is not a finite number"),
    ("\ud800", r"lone surrogate"),
    ({1: "one"}, r"key 1 at .* is not a string"),
    (b"bytes", r"bytes value at .* is not JSON-safe"),
    (nested(150), r"nests deeper than 100 levels"),
]


def runtime(database_url: str) -> DBOSRuntime:
    return DBOSRuntime(
        name="anyflow-tests", database_url=database_url, dbos_config={"log_level": "WARNING"}
    )


async def test_an_unrecordable_start_value_is_refused_before_the_run_starts(
    database_url: str,
) -> None:
    async with runtime(database_url) as rt:
        for value, why in UNRECORDABLE:
            with pytest.raises(
                ContextSerdeError, match=rf"cannot record the start event StartEvent: .*{why}"
            ):
                Wait().run(run_id="s", runtime=rt, topic=value)
        assert await rt.get_run("s") is None  # nothing started in DBOS
        handler = Wait().run(run_id="s", runtime=rt, topic="owls")
        await handler.send_event(Reply(response="yes", n=2))
        assert await handler == ["yes", 2]


async def test_an_unrecordable_sent_value_is_refused_and_the_run_goes_on(
    database_url: str,
) -> None:
    async with runtime(database_url) as rt:
        handler = Wait().run(run_id="w", runtime=rt)
        follower = rt.attach(Wait(), "w")
        for sender in (handler, follower):
            for value, why in UNRECORDABLE:
                with pytest.raises(
                    ContextSerdeError, match=rf"run 'w' cannot record Reply: .*{why}"
                ):
                    sender.send_event(Reply(response=value))
            # attrs does not check types: this one would not read back as an int.
            with pytest.raises(ContextSerdeError, match=r"cannot record Reply: .*field 'n'"):
                sender.send_event(Reply(response="ok", n="three"))  # type: ignore[arg-type]
        await follower.send_event(Reply(response="fine", n=3))
        assert await handler == ["fine", 3]
        assert await follower == ["fine", 3]
        record = await rt.get_run("w")
        assert record is not None
        assert record.status == "completed"
