"""A server restarted on the same store goes on with its runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import httpx

from .flows import ask_server

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyflow.durable import Store

ANSWER = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}


async def stream(http: httpx.AsyncClient, handler_id: str, until: str) -> list[dict]:
    """The run's events from the start until one of type ``until``."""
    seen = []
    async with http.stream("GET", f"/events/{handler_id}", params={"after_sequence": "-1"}) as r:
        # Stop reading by cancelling it: breaking out of aiter_lines would leave
        # httpcore's body generator to the garbage collector (trio warns).
        with anyio.CancelScope() as reading:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["type"] == until:
                        reading.cancel()
    return seen


async def test_a_waiting_run_outlives_its_server(shared_stores: Callable[[], Store]) -> None:
    first = ask_server(shared_stores())
    async with anyio.create_task_group() as tg:
        url = await tg.start(
            lambda task_status: first.serve(port=0, handle_signals=False, task_status=task_status)
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post("/workflows/ask/run-nowait", json={"handler_id": "r1"})
            assert [e["type"] for e in await stream(http, "r1", "Question")] == ["Question"]
            await http.post("/workflows/ask/run-nowait", json={"handler_id": "r2"})
            await stream(http, "r2", "Question")
            assert (await http.post("/events/r2", json={"event": ANSWER})).status_code == 200
            await stream(http, "r2", "StopEvent")
        first.stop()

    second = ask_server(shared_stores())
    async with anyio.create_task_group() as tg:
        url = await tg.start(
            lambda task_status: second.serve(port=0, handle_signals=False, task_status=task_status)
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            listed = (await http.get("/handlers")).json()["handlers"]
            assert {h["handler_id"]: h["status"] for h in listed} == {
                "r1": "running",
                "r2": "completed",
            }
            finished = (await http.get("/handlers/r2")).json()
            assert finished["result"]["value"] == {"result": "nice to meet you, Ada"}
            assert (await http.post("/events/r1", json={"event": ANSWER})).status_code == 200
            seen = await stream(http, "r1", "StopEvent")
            assert [e["type"] for e in seen] == ["Question", "StopEvent"]
            assert (await http.post("/events/r2", json={"event": ANSWER})).status_code == 409
        second.stop()
