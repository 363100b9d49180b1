"""Runs that only wait for input leave memory, and come back when needed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
import httpx

from anyflow.server import WorkflowServer

from .flows import Answer, Ask, AskBriefly

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ANSWER = {"type": "Answer", "value": {"key": "name", "response": "Ada"}}


async def serve_here(server: WorkflowServer, task_group: anyio.abc.TaskGroup) -> str:
    url: str = await task_group.start(
        lambda task_status: server.serve(port=0, handle_signals=False, task_status=task_status)
    )
    return url


def idle_server() -> WorkflowServer:
    server = WorkflowServer(idle_timeout=0)
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    server.add_workflow("ask_briefly", AskBriefly(), additional_events=[Answer])
    return server


async def events(http: httpx.AsyncClient, handler_id: str) -> AsyncIterator[dict]:
    async with http.stream("GET", f"/events/{handler_id}", params={"after_sequence": "-1"}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])


async def test_an_idle_run_is_released_and_an_event_brings_it_back() -> None:
    server = idle_server()
    async with anyio.create_task_group() as tg:
        url = await serve_here(server, tg)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post("/workflows/ask/run-nowait", json={"handler_id": "h1"})
            blocking_result: list[httpx.Response] = []
            blocking_done = anyio.Event()

            async def run_blocking() -> None:
                blocking_result.append(
                    await http.post("/workflows/ask/run", json={"handler_id": "h2"})
                )
                blocking_done.set()

            tg.start_soon(run_blocking)
            book = server._book()
            await book.wait_parked("h1")
            await book.wait_parked("h2")
            # Out of memory: no execution of it, no journal open; still running by the record.
            assert "h1" not in book._live
            assert "h1" not in book.durable._active
            view = await http.get("/handlers/h1")
            assert (view.status_code, view.json()["status"]) == (202, "running")

            assert (await http.post("/events/h1", json={"event": ANSWER})).status_code == 200
            seen = [e async for e in events(http, "h1")]
            assert [e["type"] for e in seen] == ["Question", "StopEvent"]
            assert seen[-1]["value"] == {"result": "nice to meet you, Ada"}

            # The blocking /run of a released run still answers when it ends.
            assert (await http.post("/events/h2", json={"event": ANSWER})).status_code == 200
            with anyio.fail_after(30):
                await blocking_done.wait()
            assert blocking_result[0].status_code == 200
            assert blocking_result[0].json()["result"]["value"] == {
                "result": "nice to meet you, Ada"
            }
        server.stop()


async def test_a_released_run_wakes_for_its_deadline() -> None:
    server = idle_server()
    async with anyio.create_task_group() as tg:
        url = await serve_here(server, tg)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post("/workflows/ask_briefly/run-nowait", json={"handler_id": "b1"})
            await server._book().wait_parked("b1")
            seen = [e async for e in events(http, "b1")]  # ends once the run has ended
            assert [e["type"] for e in seen] == ["Question", "WorkflowFailedEvent"]
            assert seen[-1]["value"]["exception_type"] == "WaitTimeoutError"
            failed = (await http.get("/handlers/b1")).json()
            assert failed["status"] == "failed"
            assert "WaitTimeoutError" in failed["error"]
        server.stop()
