"""The HTTP protocol, route by route, as the incumbent's clients speak it.

Every error is ``{"detail": message}`` with a status that says whose fault it
is: 400 a request that cannot be read, 401 a missing token, 404 an unknown
workflow or handler, 409 a request that does not fit the handler's state, 413
a body over the limit.  A 500 is a run's own failure (``/run`` of a run that
failed, ``GET /handlers/{id}`` of one), or a bug, whose details go to the log
and not to the client.

An ``HTTPException`` that replaces another error is raised ``from None`` (a
comment says so where it happens): its message is the whole answer, and
Starlette turns it into the response without logging it, so the error it
replaces would reach no one.  A bug is never caught here: it reaches the log
with its traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..events import StartEvent
from ..serialization import event_schema
from ._envelope import BadEvent, envelope
from ._handler_views import STATUSES
from ._ids import check_handler_id, new_handler_id, storable
from ._refusals import Conflict, Finished, NotDelivered, NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

    from ._handler_views import HandlerView
    from ._runs import RunBook
    from ._server import WorkflowServer

__all__ = ["routes"]

log = logging.getLogger("anyflow.server")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


MAX_SEQUENCE = 2**63 - 1
"""The largest event sequence number a store can hold."""

MAX_DEPTH = 100
"""How deep arrays and objects may nest in a request body: deeper ones would
exhaust the recursion of the decoders (a 500), and no event needs them."""


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and a durable run could not record them.
    raise ValueError(f"{name} is not a JSON number")


class _LongInteger(ValueError):
    pass


def _int(text: str) -> int:
    # Python refuses to read an integer longer than sys.get_int_max_str_digits()
    # with a message about its own setting; say it in the protocol's terms.
    digits = len(text.lstrip("-"))
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()  # 3.10.7 and later
    if limit and digits > limit:
        raise _LongInteger(
            f"the body holds an integer of {digits} digits, longer than the {limit} digits "
            "a number may have: send it as a string"
        )
    return int(text)


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value`` (level by level, without recursion)."""
    depth, level = 0, [value]
    while level:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            break
        depth += 1
        level = [x for c in containers for x in (c.values() if isinstance(c, dict) else c)]
    return depth


PAGE_SIZE = 1000
"""The most handlers ``GET /handlers`` answers at once (and by default)."""


def _page_size(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return PAGE_SIZE
    if not raw.strip().isdigit() or not 1 <= int(raw) <= PAGE_SIZE:
        raise HTTPException(400, f"limit must be a whole number from 1 to {PAGE_SIZE}, not {raw!r}")
    return int(raw)


def _cursor(position: tuple[float, str]) -> str:
    """An opaque token for a position in the list of handlers."""
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def _position(request: Request) -> tuple[float, str] | None:
    raw = request.query_params.get("cursor")
    if raw is None or not raw.strip():
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4)))
        started, handler_id = data
        if isinstance(started, bool) or not isinstance(started, int | float):
            raise TypeError(started)
        if not isinstance(handler_id, str):
            raise TypeError(handler_id)
    except (ValueError, TypeError, binascii.Error):
        # from None: the HTTP answer carries the whole message
        raise HTTPException(
            400, "cursor is not one this server gave: pass the next_cursor of the last page"
        ) from None
    return float(started), handler_id


def _flag(params: Mapping[str, str], name: str, default: bool) -> bool:
    """The query parameter ``name`` as a boolean (``params``: the query's)."""
    raw = params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise HTTPException(400, f"query parameter {name} must be true or false, not {raw!r}")


def _handler_id(request: Request) -> str:
    """The path's handler id; a 404 for one no store could hold (PostgreSQL
    fails on a NUL), without asking the store."""
    handler_id: str = request.path_params["handler_id"]
    if not storable(handler_id):
        raise HTTPException(404, f"no handler {handler_id[:100]!r}")
    return handler_id


class _Api:
    def __init__(self, server: WorkflowServer) -> None:
        self.server = server

    @property
    def book(self) -> RunBook:
        return self.server._book()

    async def _body(self, request: Request, *, required: bool) -> dict[str, Any]:
        limit = self.server.max_body_bytes
        declared = request.headers.get("content-length")
        # A 413 leaves the body unread: the connection cannot carry another
        # request (its next bytes are the rest of this body), so it is closed.
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(
                413,
                f"the request body is over the limit of {limit} bytes",
                headers={"Connection": "close"},
            )
        chunks = bytearray()
        # A body is bounded in time as in size: a client that trickles it in
        # would hold the request (and its memory) for as long as it likes.
        # (Read from receive() itself: Request.stream() is an async generator
        # to close, and costs as much again as the rest of this method.)
        timeout = self.server.body_timeout
        receive = request.receive
        try:
            with anyio.fail_after(timeout):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientDisconnect  # as Request.stream() raises it
                    chunks += message.get("body", b"")
                    if len(chunks) > limit:
                        raise HTTPException(
                            413,
                            f"the request body is over the limit of {limit} bytes",
                            headers={"Connection": "close"},
                        )
                    more = message.get("more_body", False)
        except TimeoutError:
            # from None: the HTTP answer carries the whole message
            raise HTTPException(
                408,
                f"the request body did not arrive whole within {timeout:g}s (body_timeout)",
                headers={"Connection": "close"},
            ) from None
        if not chunks.strip():
            if required:
                raise HTTPException(400, "a JSON object body is required")
            return {}
        # The excepts below raise from None: the HTTP answer carries the whole message.
        try:
            body = json.loads(chunks, parse_constant=_no_constant, parse_int=_int)
        except RecursionError:
            raise HTTPException(400, f"the body nests deeper than {MAX_DEPTH} levels") from None
        except _LongInteger as exc:
            raise HTTPException(400, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(
                400, f"Error processing request: the body is not valid JSON: {exc}"
            ) from None
        if not isinstance(body, dict):
            raise HTTPException(400, f"the body must be a JSON object, not {type(body).__name__}")
        # Each level opens a bracket, and a lone surrogate is a \u escape or
        # the byte 0xED (json reads bytes with surrogatepass): a body without
        # enough of those needs neither walk below.
        brackets = chunks.count(b"[") + chunks.count(b"{")
        if brackets > MAX_DEPTH and _depth(body) > MAX_DEPTH:
            raise HTTPException(400, f"the body nests deeper than {MAX_DEPTH} levels")
        try:
            if b"\\u" in chunks or b"\xed" in chunks:
                json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            # from None: the HTTP answer carries the whole message
            raise HTTPException(
                400, "the body holds a lone surrogate escape (such as \\ud800), which is not text"
            ) from None
        return body

    # Server and workflows.

    async def health(self, request: Request) -> Response:
        if not self.server.is_running:
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        failing = await self.book.check_store(self.server._probe_store)
        if failing is not None:
            return JSONResponse(
                {"status": "unhealthy", "reason": f"the store fails: {failing}"},
                status_code=503,
                headers=self.server._retry_after(),
            )
        return JSONResponse({"status": "healthy"})

    async def list_workflows(self, request: Request) -> Response:
        return JSONResponse({"workflows": list(self.server._served)})

    def _served(self, request: Request) -> Any:
        try:
            return self.book.workflow(request.path_params["name"])
        except NotFound as exc:
            # from None: the HTTP answer carries the whole message
            raise HTTPException(404, str(exc)) from None

    async def schema(self, request: Request) -> Response:
        served = self._served(request)
        workflow = served.workflow
        return JSONResponse(
            {
                "start": event_schema(workflow.start_event_class),
                "stop": event_schema(self.server._stop_class(workflow)),
            }
        )

    async def workflow_events(self, request: Request) -> Response:
        served = self._served(request)
        return JSONResponse({"events": [event_schema(c) for c in served.registry.classes()]})

    async def representation(self, request: Request) -> Response:
        from ..graph import workflow_graph

        served = self._served(request)
        graph = workflow_graph(served.workflow).to_json()
        graph["name"] = served.name
        return JSONResponse({"graph": graph})

    # Runs.

    async def _start(self, request: Request, *, wait: bool = True) -> Any:
        served = self._served(request)
        body = await self._body(request, required=False)
        chosen = body.get("handler_id")
        handler_id = chosen or new_handler_id()
        try:
            check_handler_id(handler_id)
        except ValueError as exc:
            # from None: the HTTP answer carries the whole message
            raise HTTPException(400, str(exc)) from None
        if body.get("context"):
            raise HTTPException(
                400,
                "Context API is disabled: anyflow's server takes no context (it has no "
                "accept_context_api): a run's state lives in the server's store; to go on "
                "from a run, send events to its handler",
            )
        data = body.get("start_event", body.get("kwargs"))
        if data is None:
            data = {}
        try:
            start_event = served.registry.parse(data, bare=served.workflow.start_event_class)
        except BadEvent as exc:
            # The incumbent's words first: its clients and tests match on them.
            # from None: the HTTP answer carries the whole message
            raise HTTPException(400, f"Validation error for 'start_event': {exc}") from None
        assert isinstance(start_event, StartEvent)  # parse() built the bare class
        # The excepts below raise from None: the HTTP answer carries the whole message.
        try:
            for _ in range(10):
                try:
                    return await self.book.start(served, start_event, handler_id, wait=wait)
                except Conflict:
                    if chosen:
                        raise
                    handler_id = new_handler_id()  # a drawn id names a run already: again
            return await self.book.start(served, start_event, handler_id, wait=wait)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        except BadEvent as exc:  # a value the run's journal could not record
            raise HTTPException(400, f"start_event: {exc}") from None

    async def run(self, request: Request) -> Response:
        live = await self._start(request)
        with self.server._until_shutdown() as shutdown:
            view = await self.book.wait(live)
        if shutdown.cancel_called:
            handler_id = live.handler.run_id
            raise HTTPException(
                503,
                f"the server is shutting down; run {handler_id!r} goes on when it restarts "
                f"(GET /handlers/{handler_id})",
            )
        return JSONResponse(view.to_json(), status_code=200 if view.status == "completed" else 500)

    async def run_nowait(self, request: Request) -> Response:
        live = await self._start(request, wait=False)
        view = await self.book.view(live.handler.run_id)
        assert view is not None
        return JSONResponse(view.to_json())

    # Handlers.

    async def _view(self, request: Request) -> HandlerView:
        handler_id = _handler_id(request)
        # Without a lifespan, the run goes on while its status is asked for.
        await self.book.touch(handler_id, settle=True)
        view = await self.book.view(handler_id)
        if view is None:
            raise HTTPException(404, f"no handler {request.path_params['handler_id']!r}")
        return view

    async def handler(self, request: Request) -> Response:
        view = await self._view(request)
        code = {"running": 202, "completed": 200}.get(view.status, 500)
        return JSONResponse(view.to_json(), status_code=code)

    async def result(self, request: Request) -> Response:
        """The older ``/results/{id}``: the result's value rather than its envelope."""
        view = await self._view(request)
        data = view.to_json()
        result = view.result
        if result is not None:
            value = envelope(result)["value"]
            data["result"] = value.get("result") if type(result).__name__ == "StopEvent" else value
        code = {"running": 202, "completed": 200}.get(view.status, 500)
        return JSONResponse(data, status_code=code)

    async def handlers(self, request: Request) -> Response:
        def values(name: str) -> set[str] | None:
            found = {
                v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")
            }
            found.discard("")
            return found or None

        statuses = values("status")
        if statuses is not None and not statuses <= set(STATUSES):
            bad = ", ".join(sorted(statuses - set(STATUSES)))
            raise HTTPException(400, f"unknown status {bad}; use {', '.join(STATUSES)}")
        limit = _page_size(request)
        after = _position(request)
        views, last = await self.book.views(
            statuses, values("workflow_name"), limit=limit, after=after
        )
        return JSONResponse(
            {
                "handlers": [v.to_json() for v in views],
                "next_cursor": _cursor(last) if last is not None else None,
            }
        )

    async def cancel(self, request: Request) -> Response:
        purge = _flag(request.query_params, "purge", False)
        # The excepts below raise from None: the HTTP answer carries the whole message.
        try:
            status = await self.book.cancel(_handler_id(request), purge)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"status": status})

    # Events.

    async def send_event(self, request: Request) -> Response:
        body = await self._body(request, required=True)
        # Each message starts with the incumbent's words: its clients and tests match on them.
        if not body.get("event"):
            raise HTTPException(
                400, 'Event data is required: the body needs "event": {"type": ..., "value": {...}}'
            )
        # The excepts below raise from None: the HTTP answer carries the whole message.
        try:
            await self.book.send(_handler_id(request), body["event"], body.get("step"))
        except NotFound as exc:
            raise HTTPException(404, f"Handler not found: {exc}") from None
        except Finished as exc:
            raise HTTPException(409, f"Workflow already completed: {exc}") from None
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        except BadEvent as exc:
            raise HTTPException(400, f"Failed to deserialize event: {exc}") from None
        except NotDelivered as exc:
            raise HTTPException(
                503, f"the event was not delivered, send it again: {exc}", {"Retry-After": "1"}
            ) from None
        return JSONResponse({"status": "sent"})


def routes(server: WorkflowServer) -> list[Route]:
    from ._stream import EventStream  # it reads this module's helpers

    api = _Api(server)
    # Starlette tries the routes in order (a regular expression each, ~1 us):
    # the requests that start and follow runs come first.  No two paths overlap.
    return [
        Route("/events/{handler_id}", EventStream(server), methods=["GET"]),
        Route("/events/{handler_id}", api.send_event, methods=["POST"]),
        Route("/workflows/{name}/run-nowait", api.run_nowait, methods=["POST"]),
        Route("/workflows/{name}/run", api.run, methods=["POST"]),
        Route("/handlers/{handler_id}", api.handler, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/workflows", api.list_workflows, methods=["GET"]),
        Route("/workflows/{name}/schema", api.schema, methods=["GET"]),
        Route("/workflows/{name}/events", api.workflow_events, methods=["GET"]),
        Route("/workflows/{name}/representation", api.representation, methods=["GET"]),
        Route("/handlers", api.handlers, methods=["GET"]),
        Route("/handlers/{handler_id}/cancel", api.cancel, methods=["POST"]),
        Route("/results/{handler_id}", api.result, methods=["GET"]),
    ]
