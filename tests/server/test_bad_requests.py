"""Requests that used to break the server, each now a 400 that leaves it serving.

Found while fuzzing the API against its OpenAPI document (test_api_fuzz.py)
and probing the edges of what JSON can carry.  Plain httpx calls against a
demo server in its own thread, on asyncio and on trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from anyflow import StartEvent, StopEvent, Workflow, step
from anyflow.durable import SqliteStore
from anyflow.server import WorkflowServer

from .conftest import demo_server

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

JSON = {"Content-Type": "application/json"}
"""Bodies sent as raw bytes still say they are JSON (the server refuses others with a 415)."""


async def _assert_still_serving(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "healthy"}
    done = await client.post("/workflows/greet/run", json={"start_event": {"name": "again"}})
    assert done.status_code == 200
    assert done.json()["result"]["value"] == {"result": "hello again"}


def _detail(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    return detail


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/workflows/greet/run-nowait", b'{"handler_id": "\\ud800"}', id="handler_id"),
        pytest.param("/workflows/greet/run", b'{"start_event": {"name": "\\udfff"}}', id="field"),
        pytest.param("/workflows/greet/run", b'{"start_event": {"\\ud800": 1}}', id="key"),
        # Not an escape: the UTF-8 of a surrogate, which json reads with surrogatepass.
        pytest.param(
            "/workflows/greet/run", b'{"start_event": {"name": "\xed\xa0\x80"}}', id="raw"
        ),
        pytest.param(
            "/events/nobody", b'{"event": {"type": "StartEvent", "x": "\\ud800"}}', id="event"
        ),
    ],
)
async def test_a_lone_surrogate_is_refused_and_does_not_take_the_server_down(
    url: str, path: str, body: bytes
) -> None:
    """``"\\ud800"`` is valid JSON syntax but no text: the journal could not
    encode the run's start (which ended the runtime and every run with it, and
    the server answered 503 from then on), and a response echoing it could not
    be encoded (a 500)."""
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        assert "lone surrogate" in _detail(await client.post(path, content=body))
        await _assert_still_serving(client)


async def test_a_surrogate_pair_is_text_and_goes_through(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        response = await client.post(
            "/workflows/greet/run", content=b'{"start_event": {"name": "\\ud83d\\ude00"}}'
        )
        assert response.status_code == 200
        assert response.json()["result"]["value"] == {"result": "hello \U0001f600"}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(url: str, constant: str) -> None:
    """They used to be read as floats: the run could not be recorded (its
    handler stayed ``running`` for good) and the blocking /run answered 500."""
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        body = f'{{"start_event": {{"name": {constant}}}}}'.encode()
        detail = _detail(await client.post("/workflows/greet/run", content=body))
        assert f"{constant.lstrip('-')} is not a JSON number" in detail
        listed = await client.get("/handlers", params={"status": "running"})
        assert listed.json() == {"handlers": [], "next_cursor": None}
        await _assert_still_serving(client)


async def test_an_integer_too_long_to_read_is_refused_in_the_protocol_s_terms(url: str) -> None:
    """Python's own message named one of its settings (sys.set_int_max_str_digits)."""
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        body = b'{"start_event": {"name": ' + b"7" * 5000 + b"}}"
        detail = _detail(await client.post("/workflows/greet/run", content=body))
        assert detail == (
            "the body holds an integer of 5000 digits, longer than the 4300 digits a number "
            "may have: send it as a string"
        )
        await _assert_still_serving(client)


@pytest.mark.parametrize("depth", [101, 500, 100_000])
async def test_deeply_nested_bodies_are_refused(url: str, depth: int) -> None:
    """A RecursionError in the JSON decoder (or later in the event decoder) was a 500."""
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        nested = "[" * depth + "]" * depth
        for body in (f'{{"x": {nested}}}', f'{{"start_event": {{"x": {nested}}}}}'):
            detail = _detail(await client.post("/workflows/greet/run", content=body.encode()))
            assert "nests deeper than 100 levels" in detail
        await _assert_still_serving(client)


async def test_nesting_within_the_limit_is_fine(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        body = '{"start_event": {"x": ' + "[" * 98 + "]" * 98 + "}}"
        response = await client.post("/workflows/greet/run", content=body.encode())
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "start_event",
    [
        pytest.param({"_extra": 1}, id="_extra"),
        pytest.param({"_extra": [1, 2]}, id="_extra-list"),
        pytest.param({"_data": {"_extra": "x"}}, id="_data._extra"),
    ],
)
async def test_extra_that_is_not_an_object_is_refused(
    url: str, start_event: dict[str, object]
) -> None:
    """``_extra`` is where an open event keeps its free fields; a non-object
    there reached cattrs, whose AttributeError was a 500."""
    async with httpx.AsyncClient(base_url=url, headers=JSON) as client:
        body = {"start_event": start_event}
        assert "_extra" in _detail(await client.post("/workflows/greet/run", json=body))
        await _assert_still_serving(client)


class Tagged(StartEvent):
    tags: dict[str, int]


class CountTags(Workflow):
    @step
    async def count(self, ev: Tagged) -> StopEvent:
        return StopEvent(result=len(ev.tags))


@pytest.fixture
def tags_url(serve: Callable[[WorkflowServer], str]) -> str:
    server = WorkflowServer()
    server.add_workflow("tags", CountTags())
    return serve(server)


@pytest.fixture
def sqlite_url(serve: Callable[[WorkflowServer], str], tmp_path: Path) -> str:
    return serve(demo_server(store=SqliteStore(tmp_path / "runs.db")))


@pytest.mark.parametrize("tags", [5, "ab", [1, 2]])
async def test_a_mapping_field_given_something_else_is_refused(tags_url: str, tags: object) -> None:
    """cattrs fails on a mapping field given a non-mapping with an
    AttributeError, which decode_fields let through: a 500."""
    async with httpx.AsyncClient(base_url=tags_url) as client:
        response = await client.post("/workflows/tags/run", json={"start_event": {"tags": tags}})
        assert "the fields do not fit Tagged" in _detail(response)
        fine = await client.post("/workflows/tags/run", json={"start_event": {"tags": {"a": 1}}})
        assert fine.status_code == 200
        assert fine.json()["result"]["value"] == {"result": 1}


@pytest.mark.parametrize("after", [2**63, 10**30])
async def test_an_after_sequence_beyond_64_bits_is_refused(sqlite_url: str, after: int) -> None:
    """SQLite cannot bind an integer past 64 bits: an OverflowError, a 500."""
    async with httpx.AsyncClient(base_url=sqlite_url) as client:
        run = await client.post("/workflows/greet/run", json={"handler_id": "h"})
        assert run.status_code == 200
        query = await client.get("/events/h", params={"after_sequence": str(after)})
        assert "after_sequence must be at most" in _detail(query)
        header = await client.get("/events/h", headers={"Last-Event-ID": str(after)})
        assert "after_sequence must be at most" in _detail(header)
        last = await client.get("/events/h", params={"after_sequence": str(2**63 - 1)})
        assert last.status_code == 204
