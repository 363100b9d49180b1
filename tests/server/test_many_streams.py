"""Many runs at once, each followed over its own SSE stream."""

from __future__ import annotations

import json

import anyio
import httpx

RUNS = 200
EVENTS = 5


async def follow(
    http: httpx.AsyncClient, index: int, seen: dict[int, list[tuple[int | None, dict]]]
) -> None:
    started = await http.post(
        "/workflows/count/run-nowait",
        json={"handler_id": f"run-{index}", "start_event": {"count": EVENTS}},
    )
    assert started.status_code == 200, started.text
    frames: list[tuple[int | None, dict]] = []
    async with http.stream(
        "GET", f"/events/run-{index}", params={"after_sequence": "-1"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        # A frame's id is its event's recorded position; an event sent live,
        # before its step's batch is recorded, comes without one.
        sequence: int | None = None
        async for line in response.aiter_lines():
            if not line:
                sequence = None  # the frame's end
            elif line.startswith("id: "):
                sequence = int(line[4:])
            elif line.startswith("data: "):
                frames.append((sequence, json.loads(line[6:])))
    seen[index] = frames


async def test_200_concurrent_runs_each_streamed_in_order(url: str) -> None:
    seen: dict[int, list[tuple[int | None, dict]]] = {}
    # Twenty clients of ten connections: one pool of 200 costs httpx O(n^2).
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in range(RUNS // 10)]
    try:
        async with anyio.create_task_group() as tg:
            for index in range(RUNS):
                tg.start_soon(follow, clients[index % len(clients)], index, seen)
        listed = (await clients[0].get("/handlers", params={"status": "completed"})).json()
    finally:
        for client in clients:
            await client.aclose()
    assert len(listed["handlers"]) == RUNS
    for index in range(RUNS):
        frames = seen[index]
        assert len(frames) == EVENTS + 1, index
        assert all(seq in (None, i) for i, (seq, _) in enumerate(frames)), (index, frames)
        assert [f["value"]["n"] for _, f in frames[:-1]] == list(range(EVENTS))
        assert frames[-1][1]["type"] == "Counted"
        assert frames[-1][1]["value"]["total"] == EVENTS
