"""The OpenAPI document of the server (``GET /openapi.json``).

Three promises: the document is valid OpenAPI 3.1; it describes every route
the Starlette application has (a route added without its description fails
here); and every response it documents, status by status, is one the real
server gives, with a body that fits the declared schema.

``openapi_spec_validator`` is not in the environment, so validity is checked
with what schemathesis brings: its OpenAPI 3.1 meta-schema, plus the JSON
Schema 2020-12 meta-schema (jsonschema_rs) for every Schema Object, which the
OpenAPI 3.1 meta-schema leaves unchecked, plus the resolution of every
``$ref``.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import re
import socket
import time
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Mount, Route

from anyflow import StartEvent, StopEvent, Workflow, step
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.serialization import event_schema
from anyflow.server import WorkflowServer
from anyflow.server._openapi import openapi

from .conftest import demo_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPE = {"Content-Type": "application/json"}
PUBLIC = {("/health", "get"), ("/openapi.json", "get"), ("/", "get"), ("/static/{path}", "get")}


# Workflows with awkward shapes for the document: a recursive start event, a
# name that is no valid component key.


@attrs.frozen
class Tree:
    label: str
    children: list[Tree] = attrs.field(factory=list)


class Planted(StartEvent):
    tree: Tree


class Grow(Workflow):
    @step
    async def grow(self, ev: Planted) -> StopEvent:
        return StopEvent(result=ev.tree.label)


def awkward_server(**options: Any) -> WorkflowServer:
    server = demo_server(**options)
    server.add_workflow("my tree (v2)", Grow())
    return server


SERVERS: dict[str, Callable[[], WorkflowServer]] = {
    "demo": demo_server,
    "token": lambda: demo_server(token="s3cret"),
    "awkward": awkward_server,
    "empty": WorkflowServer,
}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _walk(node: Any, path: str = "#") -> Iterator[tuple[str, str, Any]]:
    """Every (key, JSON pointer, value) in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            pointer = f"{path}/{key}"
            yield key, pointer, value
            yield from _walk(value, pointer)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


# Validity.


@pytest.mark.parametrize("kind", SERVERS)
def test_the_document_is_valid_openapi_3_1(kind: str) -> None:
    document = openapi(SERVERS[kind]())
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for key, _, value in _walk(document["paths"]):
        if key == "schema":
            jsonschema_rs.meta.validate(value)
    for key, pointer, value in _walk(document):
        if key == "$ref":
            assert _resolve(document, value) is not None, f"{pointer}: {value}"
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))


def test_the_document_is_a_fresh_dict_each_time() -> None:
    server = demo_server()
    first = openapi(server)
    first["components"]["schemas"]["Error"]["properties"].clear()
    assert openapi(server)["components"]["schemas"]["Error"]["properties"] == {
        "detail": {"type": "string"}
    }


# Completeness.


def _routes(server: WorkflowServer) -> set[tuple[str, str]]:
    """(path, method) of every route of the application; Starlette's implicit
    HEAD of a GET route is left out, as the document leaves it out."""
    found = set()
    for route in server.app.routes:
        if isinstance(route, Route):
            assert route.methods is not None
            found |= {(route.path, m.lower()) for m in route.methods if m != "HEAD"}
        elif isinstance(route, Mount):
            found.add((f"{route.path}/{{path}}", "get"))  # a static files mount
        else:
            raise AssertionError(f"a route of a kind the test does not know: {route!r}")
    return found


@pytest.mark.parametrize("kind", SERVERS)
def test_every_route_is_documented_and_nothing_else(kind: str) -> None:
    server = SERVERS[kind]()
    document = openapi(server)
    assert {(path, method) for path, method, _ in _operations(document)} == _routes(server)


def test_the_served_workflows_make_the_document_precise() -> None:
    server = awkward_server()
    document = openapi(server)
    schemas = document["components"]["schemas"]
    parameter = document["components"]["parameters"]["WorkflowName"]
    assert parameter["schema"]["enum"] == ["greet", "count", "ask", "fail", "my tree (v2)"]
    keys = [
        "StartEvent_greet",
        "StartEvent_count",
        "StartEvent_ask",
        "StartEvent_fail",
        "StartEvent_my_tree__v2_",
    ]
    start = schemas["RunRequest"]["properties"]["start_event"]["anyOf"]
    assert [ref["$ref"] for ref in start] == [f"#/components/schemas/{k}" for k in keys] + [
        "#/components/schemas/EventInput"
    ]
    count = dict(schemas["StartEvent_count"])
    del count["description"]
    assert count == event_schema(server._served["count"].workflow.start_event_class)
    # The recursive Tree is described once and referred to where it now lives.
    tree = schemas["StartEvent_my_tree__v2_"]
    refs = {value for key, _, value in _walk(tree) if key == "$ref"}
    assert refs, tree
    assert all(ref.startswith("#/components/schemas/StartEvent_my_tree__v2_") for ref in refs)
    types = schemas["EventInput"]["properties"]["type"]["enum"]
    assert {"Answer", "CountStart", "Planted", "StartEvent", "StopEvent"} <= set(types)


def test_an_empty_server_has_no_enums_to_offer() -> None:
    document = openapi(WorkflowServer())
    assert document["components"]["parameters"]["WorkflowName"]["schema"] == {
        "type": "string",
        "minLength": 1,
    }
    assert "enum" not in document["components"]["schemas"]["EventInput"]["properties"]["type"]


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_the_bearer_scheme_covers_the_api_and_not_the_public_routes(token: str | None) -> None:
    document = openapi(demo_server(token=token))
    for path, method, operation in _operations(document):
        public = (path, method) in PUBLIC
        if token is None:
            assert "security" not in operation
            assert "401" not in operation["responses"]
        elif public:
            assert operation["security"] == []
            assert "401" not in operation["responses"]
        else:
            assert operation["security"] == [{"bearerAuth": []}]
            assert "401" in operation["responses"]
    schemes = document["components"].get("securitySchemes")
    if token is None:
        assert schemes is None
        assert "Unauthorized" not in document["components"]["responses"]
    else:
        assert schemes == {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's token: Authorization: Bearer <token>.",
            }
        }


# The real server's responses, one of each kind.


class Exchanges:
    """Validates real responses against the document, and notes what was seen."""

    def __init__(self, document: dict[str, Any], base_url: str) -> None:
        self.document = document
        self.schema = schemathesis.openapi.from_dict(document)
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, path: str, method: str, response: httpx.Response) -> httpx.Response:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        matched = re.fullmatch(pattern, response.request.url.path)
        assert matched is not None, (path, response.request.url)
        case = self.schema[path][method.upper()].Case(path_parameters=matched.groupdict())
        case.validate_response(
            response,
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        )
        self.seen.add((path, method, str(response.status_code)))
        return response

    def get(self, path: str, url: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.check(path, "get", self.client.get(url or path, **kwargs))

    def post(self, path: str, url: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.check(path, "post", self.client.post(url or path, **kwargs))

    def documented(self) -> set[tuple[str, str, str]]:
        return {
            (path, method, code)
            for path, method, operation in _operations(self.document)
            for code in operation["responses"]
        }


def _wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


FOREIGN = {"Origin": "http://evil.example"}


def _slow_post(api: Exchanges, path: str, url: str) -> httpx.Response:
    """A POST whose body never arrives whole (over a raw socket: httpx would
    wait for the body to be sent before reading the answer)."""
    address = httpx.URL(api.base_url)
    assert address.port is not None
    head = (
        f"POST {url} HTTP/1.1\r\nHost: {address.host}:{address.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    answer = b""
    with socket.create_connection((address.host, address.port), timeout=30) as sock:
        sock.sendall(head.encode())
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
    status_line, *header_lines = answer.partition(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    response = httpx.Response(
        int(status_line.split()[1]),
        headers=headers,
        content=answer.partition(b"\r\n\r\n")[2],
        request=httpx.Request("POST", f"{api.base_url}{url}"),
    )
    response.elapsed = datetime.timedelta(0)  # schemathesis reads it
    return api.check(path, "post", response)


def _refusals(api: Exchanges, path: str, url: str) -> None:
    """What the server refuses of a POST with a body before reading it."""
    assert api.post(path, url, json={}, headers=FOREIGN).status_code == 403
    assert (
        api.post(path, url, content=b"{}", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    assert _slow_post(api, path, url).status_code == 408


def _exercise(api: Exchanges) -> None:
    """A request for every response the running demo server documents."""
    run, nowait = "/workflows/{name}/run", "/workflows/{name}/run-nowait"
    handler, result = "/handlers/{handler_id}", "/results/{handler_id}"
    cancel, events = "/handlers/{handler_id}/cancel", "/events/{handler_id}"

    assert api.get("/health").json() == {"status": "healthy"}
    api.get("/workflows")
    api.get("/openapi.json")
    api.get("/")
    api.get("/static/{path}", "/static/inspector.js")
    api.get("/static/{path}", "/static/nothing-here.js")
    for name in ("greet", "nobody"):
        for what in ("schema", "events", "representation"):
            api.get(f"/workflows/{{name}}/{what}", f"/workflows/{name}/{what}")

    # Starting runs.
    assert api.post(run, "/workflows/greet/run", json={"handler_id": "g"}).status_code == 200
    counted = {"handler_id": "c", "start_event": {"count": 2}}
    assert api.post(run, "/workflows/count/run", json=counted).status_code == 200
    assert api.post(run, "/workflows/fail/run", json={"handler_id": "f"}).status_code == 500
    assert api.post(nowait, "/workflows/ask/run-nowait", json={"handler_id": "w"}).json()[
        "status"
    ] == ("running")
    # Over the limit, but small enough to be sent whole before the server answers.
    too_big = b"{" + b" " * 1000 + b"}"
    for path, url in ((run, "/workflows/greet/run"), (nowait, "/workflows/greet/run-nowait")):
        assert api.post(path, url, content=b"{", headers=JSON_TYPE).status_code == 400
        assert api.post(path, url.replace("greet", "nobody")).status_code == 404
        assert api.post(path, url, json={"handler_id": "g"}).status_code == 409
        assert api.post(path, url, content=too_big, headers=JSON_TYPE).status_code == 413
        _refusals(api, path, url)

    # A blocking run that is cancelled while it waits: a 500 with the Handler.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(
            httpx.post, f"{api.base_url}/workflows/ask/run", json={"handler_id": "x"}, timeout=30
        )
        _wait_until(lambda: api.client.get("/handlers/x").status_code == 202)
        assert api.post(cancel, "/handlers/x/cancel").json() == {"status": "cancelled"}
        outcome = blocked.result(timeout=30)
    assert outcome.json()["status"] == "cancelled"
    api.check(run, "post", outcome)

    # Handlers and results in every state.
    api.get("/handlers")
    api.get("/handlers", params={"status": "failed,cancelled", "workflow_name": "fail"})
    assert api.get("/handlers", params={"status": "lost"}).status_code == 400
    first = api.get("/handlers", params={"limit": 1}).json()
    assert len(first["handlers"]) == 1
    assert first["next_cursor"] is not None
    api.get("/handlers", params={"limit": 1, "cursor": first["next_cursor"]})
    assert api.get("/handlers", params={"cursor": "?"}).status_code == 400
    for path in (handler, result):
        prefix = path.split("{")[0]
        codes = [api.get(path, prefix + h).status_code for h in ("g", "c", "w", "f", "x", "nobody")]
        assert codes == [200, 200, 202, 500, 500, 404]

    # Streams.
    sse = api.get(events, "/events/c", params={"after_sequence": -1})
    assert sse.headers["content-type"].startswith("text/event-stream")
    assert sse.text.count("data: ") == 3  # two Progress events and the stop event
    ndjson = api.get(events, "/events/c", params={"after_sequence": 0, "sse": "false"})
    assert len(ndjson.text.splitlines()) == 2
    bare = api.get(events, "/events/c", params={"after_sequence": 1, "include_qualified_name": 0})
    assert '"qualified_name":null' in bare.text
    assert api.get(events, "/events/c").status_code == 204  # finished: nothing comes after now
    assert api.get(events, "/events/c", params={"after_sequence": "soon"}).status_code == 400
    assert api.get(events, "/events/nobody").status_code == 404

    # Events into a run.
    answer = {"event": {"type": "Answer", "value": {"key": "name", "response": "Ada"}}}
    assert api.post(events, "/events/w", json={"event": {"type": "Nope"}}).status_code == 400
    assert api.post(events, "/events/w", content=too_big, headers=JSON_TYPE).status_code == 413
    _refusals(api, events, "/events/w")
    assert api.post(events, "/events/nobody", json=answer).status_code == 404
    assert api.post(events, "/events/w", json=answer).json() == {"status": "sent"}
    _wait_until(lambda: api.client.get("/handlers/w").status_code == 200)
    assert api.post(events, "/events/w", json=answer).status_code == 409

    # Cancelling.
    assert api.post(cancel, "/handlers/w/cancel", params={"purge": "sure"}).status_code == 400
    assert api.post(cancel, "/handlers/w/cancel", headers=FOREIGN).status_code == 403
    assert api.post(cancel, "/handlers/w/cancel").status_code == 409
    assert api.post(cancel, "/handlers/w/cancel", params={"purge": "true"}).json() == {
        "status": "deleted"
    }
    assert api.post(cancel, "/handlers/w/cancel").status_code == 404


def _exercise_without_lifespan(api: Exchanges, backend: str) -> None:
    """The 503s: a server given its runtime (``runtime=``, entered by the
    lifespan alone) runs nothing before its lifespan has started.  (A server
    over a store serves requests without a lifespan: test_without_lifespan.py.)"""
    requests = [("/health", "get")] + [
        (path, method)
        for path, method, operation in _operations(api.document)
        if "503" in operation["responses"] and path != "/health"
    ]

    async def fetch() -> list[httpx.Response]:
        # httpx's ASGI transport does not run the lifespan.
        server = demo_server(runtime=DurableRuntime(MemoryStore()))
        transport = httpx.ASGITransport(app=server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            responses = []
            for path, method in requests:
                url = path.replace("{name}", "greet").replace("{handler_id}", "h")
                body = {"event": {"type": "StartEvent"}} if method == "post" else None
                responses.append(await client.request(method, url, json=body))
            return responses

    for (path, method), response in zip(requests, anyio.run(fetch, backend=backend), strict=True):
        assert response.status_code == 503, (path, method, response.text)
        api.check(path, method, response)


def _exercise_with_a_token(api: Exchanges) -> None:
    for path, method, operation in _operations(api.document):
        url = path.replace("{name}", "greet").replace("{handler_id}", "h")
        url = url.replace("{path}", "inspector.css")
        response = api.check(path, method, api.client.request(method, url))
        assert (response.status_code == 401) == (
            "security" in operation and (path, method) not in PUBLIC
        )


def test_every_documented_response_is_one_the_server_gives(
    serve: Callable[[WorkflowServer], str], backend_name: str
) -> None:
    """Each status code of each operation, from the real server, checked by
    schemathesis against the document the server itself serves."""
    server = demo_server(max_body_bytes=512, body_timeout=0.5)
    url = serve(server)
    document = httpx.get(f"{url}/openapi.json").json()
    assert document == openapi(server)
    api = Exchanges(document, url)
    idle = Exchanges(document, url)
    token_url = serve(demo_server(token="s3cret"))
    guarded = Exchanges(httpx.get(f"{token_url}/openapi.json").json(), token_url)
    with api.client, idle.client, guarded.client:
        _exercise(api)
        _exercise_without_lifespan(idle, backend_name)
        _exercise_with_a_token(guarded)

    seen = api.seen | idle.seen | guarded.seen
    documented = api.documented() | guarded.documented()
    assert documented - seen == set(), "documented, never seen"
    assert seen - documented == set(), "seen, never documented"
