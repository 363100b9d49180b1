"""``WorkflowClient``: the HTTP protocol of ``anyflow.server``, from the caller's side.

Theory of operation.  Each method is one route (``run`` and ``run_nowait``
share one body; ``wait_for_handler`` is a stream followed by a read).  A
response is read in one place, ``_read``: a 2xx is JSON, anything else becomes
a ``WorkflowClientError`` subclass named for its status, carrying the server's
``detail``.  Two routes answer a finished run with its handler and a 500
(``/run`` of a run that failed, ``GET /handlers/{id}`` of one): those say how
the run ended, so they are read as handlers, not as server errors.

The package's other modules each hold one part of the protocol's caller
side: ``_errors`` the exception tree and the status each answer maps to,
``_models`` the typed answers (envelopes, handlers, schemas, graphs) and
``_stream`` the server-sent event stream, which reconnects from the last
sequence received.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import anyio
import httpx

from ..events import Event, StartEvent
from ..serialization import encode_event, encode_value
from ._errors import ConnectionFailedError, RunFailedError, WorkflowClientError, error_for
from ._models import (
    EventsAnswer,
    GraphAnswer,
    Handler,
    HandlersAnswer,
    Status,
    StatusAnswer,
    WorkflowGraphInfo,
    WorkflowsAnswer,
    WorkflowSchema,
    read_answer,
    short,
)
from ._stream import EventStream

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["WorkflowClient"]


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
        raise error_for(response)

    # Server and workflows.

    async def health(self) -> bool:
        """Whether the server answers that it is healthy (False while it shuts down)."""
        response = await self._send(self._request("GET", ("health",)))
        if response.status_code == 503:
            return False
        if not response.is_success:
            raise error_for(response)
        return read_answer(response.json(), StatusAnswer, "a health answer").status == "healthy"

    async def list_workflows(self) -> list[str]:
        """The names of the workflows the server runs."""
        data = await self._read("GET", "workflows")
        return list(read_answer(data, WorkflowsAnswer, "its workflows").workflows)

    async def workflow_schema(self, name: str) -> WorkflowSchema:
        """JSON Schemas of the workflow's start and stop events.

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = await self._read("GET", "workflows", name, "schema")
        return read_answer(data, WorkflowSchema, "a schema")

    async def workflow_events(self, name: str) -> list[Mapping[str, Any]]:
        """JSON Schemas of every event the workflow takes or gives (``title``: its name).

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = await self._read("GET", "workflows", name, "events")
        return list(read_answer(data, EventsAnswer, "a workflow's events").events)

    async def workflow_graph(self, name: str) -> WorkflowGraphInfo:
        """The workflow's graph of steps and events.

        :raises NotFoundError: if no workflow is served as ``name``.
        """
        data = await self._read("GET", "workflows", name, "representation")
        return read_answer(data, GraphAnswer, "a graph").graph

    async def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document."""
        data = await self._read("GET", "openapi.json")
        if not isinstance(data, dict):
            raise WorkflowClientError(
                f"the server sent an OpenAPI document that is not an object: {short(data)}"
            )
        return data

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
        data = await self._read("GET", "handlers", params=params)
        return list(read_answer(data, HandlersAnswer, "handlers").handlers)

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
        return read_answer(data, StatusAnswer, "a cancel answer").status

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
