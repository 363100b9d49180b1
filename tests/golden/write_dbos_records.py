"""Writes ``dbos_records.json``: what ``DBOSRuntime`` recorded of two runs of
``flows.Shop`` (run once, with the codecs the golden tests guard; see
``samples``'s docstring).

    python -m tests.golden.write_dbos_records
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
from dbos import DBOS

from anyflow import HumanResponseEvent, InputRequiredEvent
from anyflow.dbos import DBOSRuntime

from . import flows

HERE = Path(__file__).parent


async def _record(run_id: str) -> dict[str, Any]:
    status = await DBOS.get_workflow_status_async(run_id)
    assert status is not None
    steps = await DBOS.list_workflow_steps_async(run_id)
    return {
        "input": list(status.input["args"]),
        "steps": [[s["function_name"], s["output"]] for s in steps],
        "output": status.output,
    }


async def _runs() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/dbos.db"
        config = {"log_level": "WARNING"}
        async with DBOSRuntime(name="golden", database_url=url, dbos_config=config) as rt:
            handler = flows.Shop().run(run_id="shipped", runtime=rt, lines=3)
            follower = rt.attach(flows.Shop(), "shipped")
            async for ev in follower.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    # From a follower: a DBOS message, received and recorded.
                    await follower.send_event(HumanResponseEvent(response="yes"))
            await handler
            handler = flows.Shop().run(run_id="waiting", runtime=rt, lines=3)
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    break
            await anyio.wait_all_tasks_blocked()
            return {run_id: await _record(run_id) for run_id in ("shipped", "waiting")}


def main() -> None:
    runs = anyio.run(_runs)
    text = json.dumps(runs, indent=1, ensure_ascii=False, sort_keys=True)
    (HERE / "dbos_records.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
