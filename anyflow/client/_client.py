"""``WorkflowClient``: the HTTP protocol of ``anyflow.server``, from the caller's side.

Theory of operation.  Each method is one route (``run`` and ``run_nowait``
share one body; ``wait_for_handler`` is a stream followed by a read).  A
response is read in one place, ``_read``: a 2xx is JSON, anything else becomes
a ``WorkflowClientError`` subclass named for its status, carrying the server's
``detail``.  Two routes answer a finished run with its handler and a 500
(``/run`` of a run that failed, ``GET /handlers/{id}`` of one): those say how
the run ended, so they are read as handlers, not as server errors.

The event stream is server-sent events, ``id: <sequence>`` and ``data:
<envelope>`` frames with ``:`` heartbeat comments between them.  The stream
ends at the run's terminal event (one typed ``StopEvent``) or at a 204 (the run
had finished, with nothing after the cursor).  Anything else that ends it (a
dropped connection, a server that shuts down) is followed by a reconnection
from the last sequence received, so the consumer sees every event once.

Under trio an httpx body left half-read leaves suspended async generators
that warn when collected, so a stream is closed by draining its lines under a
cancelled scope: the cancellation unwinds httpx's generator chain whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast, overload
from urllib.parse import quote

import anyio
import attrs
import httpx

from ..errors import AnyflowError
from ..events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from ..serialization import decode_fields, encode_event, encode_value

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConflictError",
    "ConnectionFailedError",
    "EventEnvelope",
    "EventStream",
    "Handler",
    "NotFoundError",
    "RunFailedError",
    "ServerError",
    "Status",
    "UnknownEventError",
    "WorkflowClient",
    "WorkflowClientError",
    "WorkflowGraphInfo",
    "WorkflowSchema",
]

Status: TypeAlias = Literal["running", "completed", "failed", "cancelled"]
_STATUSES = ("running", "completed", "failed", "cancelled")

_E = TypeVar("_E", bound=Event)
_EventClass: TypeAlias = type[Event]
_ClassOf: TypeAlias = type[_E]
"""(``EventEnvelope.type`` hides the builtin inside that class.)"""

_FRAMEWORK_EVENTS: tuple[_EventClass, ...] = (
    StartEvent,
    StopEvent,
    InputRequiredEvent,
    HumanResponseEvent,
    WorkflowFailedEvent,
    WorkflowCancelledEvent,
    WorkflowTimedOutEvent,
)


# Errors.


class WorkflowClientError(AnyflowError):
    """Base of what ``WorkflowClient`` raises: the server refused a request
    (``status`` is the HTTP status), or gave no usable answer (``status`` is None).

    Our exception hierarchy::

        WorkflowClientError
        ├── BadRequestError        400: the request cannot be read (the detail says why)
        ├── AuthError              401/403: no token, or the wrong one
        ├── NotFoundError          404: no such workflow or handler (also a LookupError)
        ├── ConflictError          409: the request does not fit the handler's state
        ├── ServerError            5xx: the server failed (its log has the details)
        ├── RunFailedError         a blocking run ended failed or cancelled (.handler)
        ├── ConnectionFailedError  no answer: refused, dropped, timed out (a ConnectionError)
        └── UnknownEventError      EventEnvelope.to_event() got no class of that name
    """

    def __init__(
        self, message: str, *, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail
        """The server's ``detail`` message, or what went wrong on the client's side."""
        self.status = status
        """The HTTP status, or None when there was no (usable) response."""


class BadRequestError(WorkflowClientError):
    """400: the server could not read the request (a body, a parameter, an event)."""


class AuthError(WorkflowClientError):
    """401 or 403: the server needs a token (``WorkflowClient(token=...)``)."""


class NotFoundError(WorkflowClientError, LookupError):
    """404: no workflow or handler by that name."""


class ConflictError(WorkflowClientError):
    """409: the handler's state forbids it (finished, or the id is taken)."""


class ServerError(WorkflowClientError):
    """A 5xx that is not a run's own failure: a bug or an overloaded server."""


class ConnectionFailedError(WorkflowClientError, ConnectionError):
    """The server could not be reached, or the connection failed mid-answer
    (after ``max_reconnects`` attempts, for an event stream)."""


class UnknownEventError(WorkflowClientError, LookupError):
    """``EventEnvelope.to_event()`` was given no class for the envelope's type."""


class RunFailedError(WorkflowClientError):
    """A run waited on by ``WorkflowClient.run()`` failed or was cancelled."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(
            f"run {handler.handler_id!r} of {handler.workflow_name!r} {handler.status}: "
            f"{handler.error or 'no error recorded'}",
            status=500,
        )
        self.handler = handler
        """The run's handler: its ``status`` and ``error`` say how it ended."""


# Results.


def _from_json(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise WorkflowClientError(f"expected {what} as a JSON object, got {_short(data)}")
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@attrs.frozen
class EventEnvelope:
    """An event as the server sends it: its class name and its fields."""

    type: str
    """The event class's name (``"Progress"``)."""
    value: Mapping[str, Any]
    """The event's fields as JSON data (its free fields among them)."""
    types: tuple[str, ...] = ()
    """Names of the public event classes it derives from, nearest first
    (``("StopEvent",)`` for a custom stop event)."""
    qualified_name: str | None = None
    """``module.QualName`` of the class on the server."""
    sequence: int | None = None
    """Its position in the run's stream (0, 1, ...), when it came from a stream."""

    @classmethod
    def from_json(cls, data: Any, sequence: int | None = None) -> EventEnvelope:
        data = _from_json(data, "an event envelope")
        name = data.get("type")
        if not isinstance(name, str):
            raise WorkflowClientError(f"an event envelope needs a type name, got {_short(data)}")
        value = data.get("value")
        return cls(
            type=name,
            value=value if isinstance(value, Mapping) else {},
            types=tuple(data.get("types") or ()),
            qualified_name=data.get("qualified_name"),
            sequence=sequence,
        )

    def is_a(self, *names: str) -> bool:
        """Whether the event's class is, or derives from, one of these class names."""
        return self.type in names or any(name in names for name in self.types)

    @property
    def is_terminal(self) -> bool:
        """Whether this is a run's last event (a ``StopEvent`` of some kind)."""
        return self.is_a("StopEvent")

    @overload
    def to_event(self, cls: _ClassOf[_E], /) -> _E: ...
    @overload
    def to_event(self, *classes: _EventClass) -> Event: ...
    def to_event(self, *classes: _EventClass) -> Event:
        """The event, rebuilt as an instance of the class of its name among
        ``classes``, or among anyflow's own events when no class is given.

        ``envelope.to_event(Counted).total``, ``envelope.to_event(Progress,
        Counted)``; a plain ``StopEvent`` needs no class: ``handler.result.to_event()``.

        :raises UnknownEventError: if no candidate has the envelope's name.
        :raises anyflow.errors.ContextSerdeError: if the fields do not fit the class.
        """
        candidates = classes or _FRAMEWORK_EVENTS
        chosen = next((c for c in candidates if _qualified(c) == self.qualified_name), None)
        if chosen is None:
            chosen = next((c for c in candidates if c.__name__ == self.type), None)
        if chosen is None:
            names = ", ".join(c.__name__ for c in candidates)
            raise UnknownEventError(
                f"no class for event type {self.type!r} among {names}; "
                f"pass its class: envelope.to_event({self.type}, ...)"
            )
        return decode_fields(chosen, dict(self.value), "$.value")


@attrs.frozen
class Handler:
    """One run on the server, as last read (``get_handler`` reads it again)."""

    handler_id: str
    workflow_name: str
    status: Status
    """``running``, or how it ended: ``completed``, ``failed`` (timeouts
    included) or ``cancelled``."""
    run_id: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    """For a failed run, the exception and the step (``"Boom: ... in step 'x'"``)."""
    result: EventEnvelope | None = None
    """For a completed run, its stop event."""

    @property
    def is_done(self) -> bool:
        return self.status != "running"

    @classmethod
    def from_json(cls, data: Any) -> Handler:
        data = _from_json(data, "a handler")
        status = data.get("status")
        if status not in _STATUSES:
            raise WorkflowClientError(f"a handler with an unknown status: {_short(data)}")
        result = data.get("result")
        return cls(
            handler_id=str(data["handler_id"]),
            workflow_name=str(data.get("workflow_name", "")),
            status=cast("Status", status),
            run_id=data.get("run_id"),
            started_at=_datetime(data.get("started_at")),
            updated_at=_datetime(data.get("updated_at")),
            completed_at=_datetime(data.get("completed_at")),
            error=data.get("error"),
            result=EventEnvelope.from_json(result) if result is not None else None,
        )


@attrs.frozen
class WorkflowSchema:
    """JSON Schemas of a workflow's start event and stop event fields."""

    start: Mapping[str, Any]
    stop: Mapping[str, Any]


@attrs.frozen
class WorkflowGraphInfo:
    """A workflow's graph as the server draws it (``anyflow.graph.WorkflowGraph.to_json``)."""

    name: str
    description: str | None
    nodes: tuple[Mapping[str, Any], ...]
    """Step, event, external and resource nodes: ``id``, ``label``, ``node_type``..."""
    edges: tuple[Mapping[str, Any], ...]
    """``source`` and ``target`` node ids (and a ``label`` on resource edges)."""


# Requests.


def _event_value(event: Event) -> dict[str, Any]:
    """The event's fields as JSON data, free fields flat beside the declared ones."""
    fields: dict[str, Any] = encode_event(event)["fields"]
    fields.update(fields.pop("_extra", None) or {})
    return fields


def _envelope_out(event: Event | Mapping[str, Any]) -> Any:
    if isinstance(event, Event):
        return {"type": type(event).__name__, "value": _event_value(event)}
    return event


def _error_for(response: httpx.Response) -> WorkflowClientError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, str):
        detail = response.text[:200] or response.reason_phrase
    request = response.request
    message = f"{detail} (HTTP {response.status_code} from {request.method} {request.url.path})"
    status = response.status_code
    kind: type[WorkflowClientError] = {
        400: BadRequestError,
        401: AuthError,
        403: AuthError,
        404: NotFoundError,
        409: ConflictError,
    }.get(status, ServerError if status >= 500 else WorkflowClientError)
    return kind(message, status=status, detail=detail)


def _names(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class WorkflowClient:
    """A typed async client of an anyflow (or llama-agents) workflow server.

    Runs under asyncio and trio::

        async with WorkflowClient("http://127.0.0.1:8080", token="...") as client:
            handler = await client.run("greet", name="Ada")
            print(handler.result.to_event(StopEvent).result)

    :param base_url: the server's root URL.
    :param token: sent as ``Authorization: Bearer <token>`` when given.
    :param timeout: seconds allowed for each request (connect, read, write);
        a blocking ``run`` and event streams wait for the run without a read limit.
    :param httpx_client: an ``httpx.AsyncClient`` to send requests with (a custom
        transport, proxies); the caller keeps it and closes it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | None = 30.0,
        httpx_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._owned = httpx_client is None
        self._http = httpx_client if httpx_client is not None else httpx.AsyncClient()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, if this client made it."""
        if self._owned:
            await self._http.aclose()

    def _url(self, *segments: str) -> str:
        return self.base_url + "".join("/" + quote(s, safe="") for s in segments)

    def _request(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        wait: bool = False,
        read_timeout: float | None = None,
    ) -> httpx.Request:
        """A request to the route at ``segments``; with ``wait``, one whose
        answer may take as long as a run (``read_timeout`` between bytes)."""
        read = read_timeout if wait else self._timeout
        timeout = httpx.Timeout(self._timeout, read=read)
        return self._http.build_request(
            method,
            self._url(*segments),
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=body,
            headers={**self._headers, **(headers or {})},
            timeout=timeout,
        )

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._http.send(request)
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"no answer from {request.method} {request.url}: {type(exc).__name__}: {exc}"
            ) from exc

    async def _read(
        self,
        method: str,
        *segments: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        wait: bool = False,
        handler: bool = False,
    ) -> Any:
        """The JSON of a 2xx answer; with ``handler``, also of a 500 that is a
        finished run's handler.

        :raises WorkflowClientError: for any other answer, by status.
        """
        request = self._request(method, segments, params=params, body=body, wait=wait)
        response = await self._send(request)
        if response.is_success:
            return response.json()
        if handler and response.status_code == 500:
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, Mapping) and "handler_id" in data:
                return data
        raise _error_for(response)

    # Server and workflows.

    async def health(self) -> bool:
        """Whether the server answers that it is healthy (False while it shuts down)."""
        response = await self._send(self._request("GET", ("health",)))
        if response.status_code == 503:
            return False
        if not response.is_success:
            raise _error_for(response)
        return _from_json(response.json(), "a health answer").get("status") == "healthy"

    async def list_workflows(self) -> list[str]:
        """The names of the workflows the server runs."""
        return list(_from_json(await self._read("GET", "workflows"), "workflows")["workflows"])

    async def workflow_schema(self, name: str) -> WorkflowSchema:
        """JSON Schemas of the workflow's start and stop events.

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = _from_json(await self._read("GET", "workflows", name, "schema"), "a schema")
        return WorkflowSchema(start=data["start"], stop=data["stop"])

    async def workflow_events(self, name: str) -> list[Mapping[str, Any]]:
        """JSON Schemas of every event the workflow takes or gives (``title``: its name).

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = _from_json(await self._read("GET", "workflows", name, "events"), "events")
        return list(data["events"])

    async def workflow_graph(self, name: str) -> WorkflowGraphInfo:
        """The workflow's graph of steps and events.

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = await self._read("GET", "workflows", name, "representation")
        graph = _from_json(_from_json(data, "a graph").get("graph"), "a graph")
        return WorkflowGraphInfo(
            name=graph.get("name", name),
            description=graph.get("description"),
            nodes=tuple(graph.get("nodes", ())),
            edges=tuple(graph.get("edges", ())),
        )

    async def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document."""
        return dict(_from_json(await self._read("GET", "openapi.json"), "OpenAPI"))

    # Runs.

    @staticmethod
    def _start_body(
        start_event: StartEvent | Mapping[str, Any] | None,
        handler_id: str | None,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        if start_event is not None and fields:
            raise TypeError(
                "pass the start event or its fields as keywords, not both: "
                f"got a {type(start_event).__name__} and {', '.join(sorted(fields))}"
            )
        if start_event is None:
            # {"value": ...} names no type: the server builds the workflow's
            # start class from the fields, even from fields named "type".
            value = {k: encode_value(v, f"$.{k}") for k, v in fields.items()}
            start: Any = {"value": value}
        else:
            start = _envelope_out(start_event)
        body: dict[str, Any] = {"start_event": start}
        if handler_id is not None:
            body["handler_id"] = handler_id
        return body

    async def run(
        self,
        workflow: str,
        start_event: StartEvent | Mapping[str, Any] | None = None,
        /,
        *,
        handler_id: str | None = None,
        **fields: Any,
    ) -> Handler:
        """Run ``workflow`` and wait for its end; its completed handler.

        The start event is an anyflow ``StartEvent`` (its class name and fields
        are sent), a JSON envelope, or the fields as keywords:
        ``run("count", count=3)``.

        :raises RunFailedError: if the run fails or is cancelled (``.handler`` says how).
        :raises NotFoundError: for an unknown workflow.
        :raises BadRequestError: for a start event the workflow cannot take.
        :raises ConflictError: if ``handler_id`` names a run already.
        """
        body = self._start_body(start_event, handler_id, fields)
        data = await self._read(
            "POST", "workflows", workflow, "run", body=body, wait=True, handler=True
        )
        handler = Handler.from_json(data)
        if handler.status != "completed":
            raise RunFailedError(handler)
        return handler

    async def run_nowait(
        self,
        workflow: str,
        start_event: StartEvent | Mapping[str, Any] | None = None,
        /,
        *,
        handler_id: str | None = None,
        **fields: Any,
    ) -> Handler:
        """Start ``workflow`` and return its running handler at once (see ``run``)."""
        body = self._start_body(start_event, handler_id, fields)
        return Handler.from_json(
            await self._read("POST", "workflows", workflow, "run-nowait", body=body)
        )

    # Handlers.

    async def get_handler(self, handler_id: str) -> Handler:
        """The handler as it is now; a failed or cancelled one is returned, not raised.

        :raises NotFoundError: for an unknown (or purged) handler.
        """
        return Handler.from_json(await self._read("GET", "handlers", handler_id, handler=True))

    async def list_handlers(
        self,
        status: Status | Iterable[Status] | None = None,
        workflow_name: str | Iterable[str] | None = None,
    ) -> list[Handler]:
        """The server's handlers, filtered by any of the statuses and any of the names."""
        params = {"status": _names(status), "workflow_name": _names(workflow_name)}
        data = _from_json(await self._read("GET", "handlers", params=params), "handlers")
        return [Handler.from_json(h) for h in data["handlers"]]

    async def wait_for_handler(
        self,
        handler_id: str,
        timeout: float | None = None,  # noqa: ASYNC109 (the incumbent's signature)
    ) -> Handler:
        """Wait until the run ends (by following its event stream); its handler.

        :raises TimeoutError: if it is still running after ``timeout`` seconds.
        :raises NotFoundError: for an unknown handler.
        """
        try:
            with anyio.fail_after(timeout):
                async with self.stream_events(handler_id, after="now") as stream:
                    async for _ in stream:
                        pass
                # The stream ends with the run's last event; the handler may
                # say "running" a moment longer, while that end is recorded.
                delay = 0.01
                while not (handler := await self.get_handler(handler_id)).is_done:
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                return handler
        except TimeoutError:
            # from None: the cause is the polling loop's own timeout
            raise TimeoutError(
                f"handler {handler_id!r} is still running after {timeout}s"
            ) from None

    async def send_event(
        self, handler_id: str, event: Event | Mapping[str, Any], step: str | None = None
    ) -> None:
        """Deliver ``event`` to the run; returns once the server has recorded it.

        An anyflow ``Event`` is sent by class name and fields (the workflow must
        know the name); a mapping is sent as it is (``{"type": ..., "value": {...}}``).
        ``step`` delivers it to that step only.

        :raises BadRequestError: for an event type the workflow does not take.
        :raises ConflictError: if the run has finished.
        :raises NotFoundError: for an unknown handler.
        """
        body: dict[str, Any] = {"event": _envelope_out(event)}
        if step is not None:
            body["step"] = step
        await self._read("POST", "events", handler_id, body=body)

    async def cancel(self, handler_id: str, purge: bool = False) -> str:
        """Cancel the run; with ``purge`` also delete its records (a finished
        run can be purged).  The new status: ``"cancelled"`` or ``"deleted"``.

        :raises ConflictError: for a finished run without ``purge``.
        :raises NotFoundError: for an unknown handler.
        """
        params = {"purge": "true" if purge else "false"}
        data = await self._read("POST", "handlers", handler_id, "cancel", params=params)
        return str(_from_json(data, "a cancel answer")["status"])

    def stream_events(
        self,
        handler_id: str,
        after: int | Literal["now"] = -1,
        *,
        max_reconnects: int = 3,
        reconnect_delay: float = 0.1,
        idle_timeout: float | None = 60.0,
    ) -> EventStream:
        """The run's events, from after sequence ``after`` (-1: from its first,
        ``"now"``: only new ones), to its last.

        Use it as ``async with client.stream_events(id) as stream: async for
        envelope in stream: ...``: leaving the block early closes the
        connection.  A dropped connection is reopened from the last sequence
        received, up to ``max_reconnects`` times in a row, ``reconnect_delay``
        seconds apart (doubling); ``idle_timeout`` seconds without a byte
        (heartbeats included) count as a dropped connection.  (A stream from
        ``"now"`` that drops before its first event goes on from the new "now".)
        """
        return EventStream(
            self,
            handler_id,
            after,
            max_reconnects=max_reconnects,
            reconnect_delay=reconnect_delay,
            idle_timeout=idle_timeout,
        )


@attrs.define
class _SseFrame:
    id: str | None = None
    data: list[str] = attrs.field(factory=list)


class _SseDecoder:
    """Server-sent events from lines (sans-IO): ``line()`` returns a complete
    frame at the blank line that ends it."""

    def __init__(self) -> None:
        self._frame = _SseFrame()
        self.recorded: str | None = None
        """The id of the last frame with an id and no data: the server says
        that the events up to it (sent before without an id) are recorded."""

    def line(self, line: str) -> _SseFrame | None:
        if not line:
            frame, self._frame = self._frame, _SseFrame()
            if not frame.data and frame.id is not None:
                self.recorded = frame.id
            return frame if frame.data else None
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._frame.id = value
        elif name == "data":
            self._frame.data.append(value)
        return None


class EventStream:
    """The events of one run, as an async iterator of ``EventEnvelope``s
    (from ``WorkflowClient.stream_events``); an async context manager that
    closes its connection."""

    def __init__(
        self,
        client: WorkflowClient,
        handler_id: str,
        after: int | Literal["now"],
        *,
        max_reconnects: int,
        reconnect_delay: float,
        idle_timeout: float | None,
    ) -> None:
        if after != "now" and (not isinstance(after, int) or after < -1):
            raise ValueError(f"after must be -1 or more, or 'now', not {after!r}")
        self.handler_id = handler_id
        self._client = client
        self._last: int | Literal["now"] = after
        self._max_reconnects = max_reconnects
        self._delay = reconnect_delay
        self._idle_timeout = idle_timeout
        self._failures = 0
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._decoder = _SseDecoder()
        self._ended = False
        """The run's last event was given: the stream ends at the next step."""
        self._done = False

    @property
    def last_sequence(self) -> int | Literal["now"]:
        """The sequence of the last event given, or the ``after`` it started from:
        ``stream_events(id, after=stream.last_sequence)`` goes on from here."""
        return self._last

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventEnvelope:
        while not self._done:
            if self._ended:
                await self._finish()
                break
            if self._lines is None:
                await self._connect()
                continue
            try:
                line = await self._lines.__anext__()
            except StopAsyncIteration:
                await self._dropped(None)  # closed before the run's last event
                continue
            except httpx.TransportError as exc:
                await self._dropped(exc)
                continue
            frame = self._decoder.line(line)
            if frame is None:
                recorded, self._decoder.recorded = self._decoder.recorded, None
                if recorded is not None and recorded.lstrip("-").isdigit():
                    self._last = int(recorded)  # a reconnection goes on from there
                continue
            envelope = self._envelope(frame)
            if envelope.sequence is not None:
                self._last = envelope.sequence
            self._failures = 0
            self._ended = envelope.is_terminal
            return envelope
        raise StopAsyncIteration

    async def _finish(self) -> None:
        """After the run's last event the server ends the response: read up to
        that end (so the connection can serve another request), then close."""
        if self._lines is not None:
            with anyio.move_on_after(self._idle_timeout):
                try:
                    while True:
                        await self._lines.__anext__()
                except (StopAsyncIteration, httpx.TransportError):
                    pass
        await self.aclose()

    def _envelope(self, frame: _SseFrame) -> EventEnvelope:
        text = "\n".join(frame.data)
        try:
            data = json.loads(text)
        except ValueError:
            # from None: the message shows the frame itself
            raise WorkflowClientError(
                f"the stream sent a frame that is not JSON: {text[:200]!r}"
            ) from None
        sequence = int(frame.id) if frame.id and frame.id.lstrip("-").isdigit() else None
        return EventEnvelope.from_json(data, sequence)

    async def _connect(self) -> None:
        after = self._last
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if isinstance(after, int) and after >= 0:
            headers["Last-Event-ID"] = str(after)
        request = self._client._request(
            "GET",
            ("events", self.handler_id),
            params={"sse": "true", "after_sequence": str(after)},
            headers=headers,
            wait=True,
            read_timeout=self._idle_timeout,
        )
        try:
            response = await self._client._http.send(request, stream=True)
        except httpx.TransportError as exc:
            await self._dropped(exc)
            return
        if response.status_code == 204:
            await response.aclose()
            self._done = True
        elif not response.is_success:
            await response.aread()
            await response.aclose()
            self._done = True
            raise _error_for(response)
        else:
            self._response = response
            self._lines = response.aiter_lines()
            self._decoder = _SseDecoder()  # a frame cut short is sent again

    async def _dropped(self, exc: Exception | None) -> None:
        await self._close_response()
        self._failures += 1
        if self._failures > self._max_reconnects:
            self._done = True
            why = f"{type(exc).__name__}: {exc}" if exc else "the server closed it early"
            raise ConnectionFailedError(
                f"the event stream of handler {self.handler_id!r} failed "
                f"{self._failures} times in a row (last: {why}); it can go on with "
                f"stream_events(..., after={self._last!r})"
            ) from exc
        delay = self._delay * 2 ** (self._failures - 1)
        if delay > 0 and math.isfinite(delay):
            await anyio.sleep(min(delay, 5.0))

    async def _close_response(self) -> None:
        lines, response = self._lines, self._response
        self._lines = self._response = None
        with anyio.CancelScope(shield=True):
            if lines is not None:
                # Unwind httpx's chain of body generators at a read (see the
                # module docstring); lines already received are dropped.
                with anyio.CancelScope() as drain:
                    drain.cancel()
                    try:
                        while True:
                            await lines.__anext__()
                    except (StopAsyncIteration, httpx.HTTPError):
                        pass
            if response is not None:
                await response.aclose()

    async def aclose(self) -> None:
        """Close the connection; the stream gives no more events."""
        self._done = True
        await self._close_response()
