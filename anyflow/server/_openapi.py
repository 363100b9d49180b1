"""The OpenAPI document of the protocol (``GET /openapi.json``).

The document is OpenAPI 3.1: its schemas are JSON Schema 2020-12, the dialect
``anyflow.serialization.event_schema`` writes, so the start events of the
served workflows go in as they are (under ``components.schemas`` as
``StartEvent_<name>``, with their internal references re-rooted there).

It is built from the server itself, so it is as precise as the server can be:
the ``name`` path parameter lists the served workflows, an event's ``type``
lists the event classes they take, and with a token every API operation
declares the bearer scheme and its 401.  What it promises is what the routes
do (``_routes.py``), status code by status code; tests/server/test_openapi.py
checks every route is described, and test_api_fuzz.py holds the live server to
the document.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..serialization import event_schema
from ._envelope import qualified_name
from ._ids import HANDLER_ID_PATTERN, MAX_HANDLER_ID
from ._routes import MAX_DEPTH, MAX_SEQUENCE, PAGE_SIZE
from ._runs import STATUSES

if TYPE_CHECKING:
    from ._server import WorkflowServer

__all__ = ["openapi"]

JSON = "application/json"
_SCHEMAS = "#/components/schemas/"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"{_SCHEMAS}{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


# Component schemas that do not depend on the served workflows.

_DATE_TIME = {"type": "string", "format": "date-time"}

_HANDLER_FIELDS: dict[str, Any] = {
    "handler_id": {"type": "string"},
    "workflow_name": {"type": "string"},
    "run_id": {"type": "string", "description": "The same as handler_id."},
    "status": {"type": "string", "enum": list(STATUSES)},
    "started_at": _DATE_TIME,
    "updated_at": _nullable(_DATE_TIME),
    "completed_at": _nullable(_DATE_TIME),
    "error": {"type": ["string", "null"]},
    "result_unreadable": {
        "type": "boolean",
        "description": (
            "True when the run's records cannot be read back (damaged): `error` says "
            "why, and `result` is null. The other runs are listed as usual."
        ),
    },
}

_BASE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error the server answers: a human-readable reason.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "EventEnvelope": {
        "type": "object",
        "description": (
            "An event as the server sends it: the class name, its fields, the names of "
            "the event classes it derives from (nearest first) and its importable name "
            "(null in a stream asked for without qualified names)."
        ),
        "properties": {
            "type": {"type": "string"},
            "value": {"type": "object"},
            "types": {"type": "array", "items": {"type": "string"}},
            "qualified_name": {"type": ["string", "null"]},
        },
        "required": ["type", "value", "types", "qualified_name"],
    },
    "Handler": {
        "type": "object",
        "description": (
            "One run of a workflow. The handler id is the run id; a finished run keeps "
            "its outcome: the stop event when it completed, an error message otherwise."
        ),
        "properties": {**_HANDLER_FIELDS, "result": _nullable(_ref("EventEnvelope"))},
        "required": [*_HANDLER_FIELDS, "result"],
    },
    "HandlerResult": {
        "type": "object",
        "description": (
            "A Handler whose result is the stop event's value rather than its envelope: "
            "the `result` field of a plain StopEvent, all the fields of a custom one."
        ),
        "properties": {**_HANDLER_FIELDS, "result": {"description": "Any JSON value."}},
        "required": [*_HANDLER_FIELDS, "result"],
    },
    "HandlersList": {
        "type": "object",
        "description": "One page of runs, oldest first.",
        "properties": {
            "handlers": {"type": "array", "items": _ref("Handler")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
        "required": ["handlers", "next_cursor"],
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
            "reason": {
                "type": "string",
                "description": "Why the server is unhealthy (its store fails), when it is.",
            },
        },
        "required": ["status"],
    },
    "WorkflowList": {
        "type": "object",
        "properties": {"workflows": {"type": "array", "items": {"type": "string"}}},
        "required": ["workflows"],
    },
    "WorkflowSchemas": {
        "type": "object",
        "description": "JSON Schemas (2020-12) of the fields of the start and stop events.",
        "properties": {"start": {"type": "object"}, "stop": {"type": "object"}},
        "required": ["start", "stop"],
    },
    "WorkflowEvents": {
        "type": "object",
        "description": "A JSON Schema of the fields of every event class the workflow reads.",
        "properties": {"events": {"type": "array", "items": {"type": "object"}}},
        "required": ["events"],
    },
    "WorkflowGraph": {
        "type": "object",
        "description": (
            "Steps, events, the outside world and resources as nodes; what accepts, "
            "returns and waits for what as edges."
        ),
        "properties": {
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "nodes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "label": {"type": "string"},
                        "node_type": {
                            "type": "string",
                            "enum": ["step", "event", "external", "resource"],
                        },
                    },
                    "required": ["id", "label", "node_type"],
                },
            },
            "edges": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string"},
                        "target": {"type": "string"},
                        "label": {"type": ["string", "null"]},
                    },
                    "required": ["source", "target"],
                },
            },
        },
        "required": ["name", "nodes", "edges"],
    },
    "WorkflowRepresentation": {
        "type": "object",
        "properties": {"graph": _ref("WorkflowGraph")},
        "required": ["graph"],
    },
    "ServerSentEvent": {
        "type": "object",
        "description": (
            "One event of an SSE stream: its `id` is the event's sequence number, its "
            "`data` the JSON of an EventEnvelope."
        ),
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"type": "string", "const": "message"},
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": _ref("EventEnvelope"),
            },
        },
        "required": ["id", "data"],
    },
    "CancelResult": {
        "type": "object",
        "description": "`cancelled`, or `deleted` when the run's records were purged.",
        "properties": {"status": {"type": "string", "enum": ["cancelled", "deleted"]}},
        "required": ["status"],
    },
    "EventSent": {
        "type": "object",
        "properties": {"status": {"type": "string", "const": "sent"}},
        "required": ["status"],
    },
    "SendEventRequest": {
        "type": "object",
        "properties": {
            "event": {
                "description": (
                    "The event, as an object or as a string holding its JSON. An empty "
                    "value is refused."
                ),
                "anyOf": [_ref("EventInput"), {"type": "string", "minLength": 1}],
            },
            "step": {
                "type": "string",
                "description": "Deliver the event to this step only.",
            },
        },
        "required": ["event"],
    },
}

_BASE_RESPONSES: dict[str, dict[str, Any]] = {
    "BadRequest": _error(
        "The request cannot be read: a body that is not a JSON object (NaN, Infinity and "
        f"lone surrogate escapes are not JSON; nor is nesting deeper than {MAX_DEPTH} "
        "levels accepted), a query parameter out of its range, an event the workflow "
        "does not take, or a value the run's journal could not record (a number beyond "
        "a double's range such as 1e400, a field that does not fit its type); the start "
        "event sent into a run; or a `Host` the server does not answer to (allowed_hosts)."
    ),
    "Unauthorized": {
        **_error("The server has a token and the request did not carry it."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "NotFound": _error("No workflow, or no handler, by that name."),
    "Conflict": _error("The request does not fit the handler's state."),
    "PayloadTooLarge": _error("The body is over the server's limit (max_body_bytes)."),
    "Forbidden": _error(
        "The request comes from a web page of another origin (its `Origin` header) that "
        "is not in the server's cors_origins."
    ),
    "RequestTimeout": _error(
        "The body did not arrive whole within the server's body_timeout; the connection is closed."
    ),
    "UnsupportedMediaType": _error(
        "The request has a body that is not declared JSON: send Content-Type: application/json."
    ),
    "Unavailable": {
        **_error(
            "The server is not running, or is shutting down; or its store fails (a full "
            "disk, a database down): nothing of the request was recorded, retry after "
            "`Retry-After` seconds. The runs the failure stopped go on once the store works."
        ),
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
    },
}


def _component_key(prefix: str, name: str, taken: set[str]) -> str:
    """A components key for a workflow name (keys allow ``[A-Za-z0-9._-]`` only)."""
    base = f"{prefix}_{re.sub(r'[^A-Za-z0-9._-]', '_', name)}"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    taken.add(key)
    return key


def _rerooted(schema: Any, root: str) -> Any:
    """``schema`` with its document-relative ``$ref``s (``#``, ``#/$defs/...``)
    pointing into ``root``, the place it now lives in the OpenAPI document."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                out[key] = root + value[1:]
            else:
                out[key] = _rerooted(value, root)
        return out
    if isinstance(schema, list):
        return [_rerooted(item, root) for item in schema]
    return schema


def openapi(server: WorkflowServer) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``server``'s HTTP API."""
    schemas = dict(_BASE_SCHEMAS)
    responses = dict(_BASE_RESPONSES)
    taken = set(schemas)

    # What the served workflows make precise.
    start_refs = []
    type_names: set[str] = set()
    qualified_names: set[str] = set()
    for name, served in server._served.items():
        key = _component_key("StartEvent", name, taken)
        schema = _rerooted(event_schema(served.workflow.start_event_class), _SCHEMAS + key)
        schema["description"] = f"The fields of the start event of workflow {name!r}."
        schemas[key] = schema
        start_refs.append(_ref(key))
        for cls in served.registry.classes():
            type_names.add(cls.__name__)
            qualified_names.add(qualified_name(cls))

    def names(found: set[str]) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(found)} if found else {"type": "string"}

    schemas["EventInput"] = {
        "type": "object",
        "description": (
            "An event as a client sends it: its class by `type` (or by `qualified_name`), "
            "its fields as `value` (`data` for older clients). Only classes a served "
            "workflow declares are known; each workflow takes its own."
        ),
        "properties": {
            "type": names(type_names),
            "qualified_name": names(qualified_names),
            "value": {"type": "object"},
            "data": {"type": "object"},
        },
    }
    schemas["RunRequest"] = {
        "type": "object",
        "properties": {
            "start_event": {
                "description": (
                    "The start event: its fields (see the StartEvent_<name> schema of the "
                    "workflow), or an envelope naming its class or one of its bases. "
                    "Absent: a start event with no fields."
                ),
                "anyOf": [*start_refs, _ref("EventInput")],
            },
            "handler_id": {
                "type": "string",
                "maxLength": MAX_HANDLER_ID,
                "pattern": f"^$|{HANDLER_ID_PATTERN}",
                "description": (
                    "The id to give the run (a fresh one if absent or empty): 1 to "
                    f"{MAX_HANDLER_ID} characters of A-Z a-z 0-9 . _ : -, not starting with "
                    "a dot (400 otherwise); an id already used is a 409."
                ),
            },
            "kwargs": {
                "type": "object",
                "description": "The start event's fields, when start_event is absent.",
            },
        },
    }

    workflow_names = list(server._served)
    name_parameter: dict[str, Any] = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "A served workflow (GET /workflows lists them).",
        "schema": {"type": "string", "enum": workflow_names}
        if workflow_names
        else {"type": "string", "minLength": 1},
    }
    parameters: dict[str, dict[str, Any]] = {
        "WorkflowName": name_parameter,
        "HandlerId": {
            "name": "handler_id",
            "in": "path",
            "required": True,
            "description": "The handler (run) id.",
            "schema": {"type": "string", "minLength": 1},
        },
    }

    secured = server.token is not None

    def responses_of(codes: dict[str, Any], *, auth: bool) -> dict[str, Any]:
        """``codes`` with names of shared responses made references, and the 401."""
        out = {
            code: {"$ref": f"#/components/responses/{value}"} if isinstance(value, str) else value
            for code, value in codes.items()
        }
        if auth:
            out["401"] = {"$ref": "#/components/responses/Unauthorized"}
        return dict(sorted(out.items()))

    def api(operation: dict[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        """An operation behind the token, if the server has one."""
        operation["responses"] = responses_of(codes, auth=secured)
        if secured:
            operation["security"] = [{"bearerAuth": []}]
        return operation

    def public(operation: dict[str, Any], codes: dict[str, Any]) -> dict[str, Any]:
        """An operation open to all (the auth middleware lets it through)."""
        operation["responses"] = responses_of(codes, auth=False)
        if secured:
            operation["security"] = []
        return operation

    name_ref = {"$ref": "#/components/parameters/WorkflowName"}
    handler_ref = {"$ref": "#/components/parameters/HandlerId"}

    def flag(name: str, default: bool, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description + " (also 1/0, yes/no).",
            "schema": {"type": "boolean", "default": default},
        }

    run_body = {
        "required": False,
        "description": "All fields are optional; so is the body.",
        "content": {JSON: {"schema": _ref("RunRequest")}},
    }
    handler_states = {
        "200": _json(_ref("Handler"), "The run has completed."),
        "202": _json(_ref("Handler"), "The run is still going."),
        "404": "NotFound",
        "500": _json(_ref("Handler"), "The run failed or was cancelled (see `error`)."),
    }

    paths: dict[str, Any] = {
        "/health": {
            "get": public(
                {
                    "operationId": "health",
                    "tags": ["server"],
                    "summary": "Whether the server is up and serving runs",
                    "description": "Needs no token, for load balancers and probes.",
                },
                {
                    "200": _json(_ref("Health"), "The server is serving, and its store works."),
                    "503": {
                        **_json(
                            _ref("Health"),
                            "The server is starting or stopping, or its store fails (`reason`; "
                            "the server tries it again every `Retry-After` seconds).",
                        ),
                        "headers": {"Retry-After": {"schema": {"type": "string"}}},
                    },
                },
            )
        },
        "/workflows": {
            "get": api(
                {
                    "operationId": "listWorkflows",
                    "tags": ["workflows"],
                    "summary": "The names of the served workflows",
                },
                {"200": _json(_ref("WorkflowList"), "The names, in registration order.")},
            )
        },
        "/workflows/{name}/run": {
            "parameters": [name_ref],
            "post": api(
                {
                    "operationId": "runWorkflow",
                    "tags": ["workflows"],
                    "summary": "Start a run and wait for its end",
                    "description": (
                        "Answers when the run ends: 200 with its result when it completed, "
                        "500 with the same Handler body when it failed or was cancelled. A "
                        "server that shuts down meanwhile answers 503; the run goes on when "
                        "it restarts."
                    ),
                    "requestBody": run_body,
                },
                {
                    "200": _json(_ref("Handler"), "The run completed."),
                    "400": "BadRequest",
                    "404": "NotFound",
                    "403": "Forbidden",
                    "408": "RequestTimeout",
                    "409": "Conflict",
                    "413": "PayloadTooLarge",
                    "415": "UnsupportedMediaType",
                    "500": _json(_ref("Handler"), "The run failed or was cancelled."),
                    "503": "Unavailable",
                },
            ),
        },
        "/workflows/{name}/run-nowait": {
            "parameters": [name_ref],
            "post": api(
                {
                    "operationId": "startWorkflow",
                    "tags": ["workflows"],
                    "summary": "Start a run and answer at once",
                    "description": "Follow the run with GET /handlers/{id} or /events/{id}.",
                    "requestBody": run_body,
                },
                {
                    "200": _json(_ref("Handler"), "The run has started."),
                    "400": "BadRequest",
                    "404": "NotFound",
                    "403": "Forbidden",
                    "408": "RequestTimeout",
                    "409": "Conflict",
                    "413": "PayloadTooLarge",
                    "415": "UnsupportedMediaType",
                    "503": "Unavailable",
                },
            ),
        },
        "/workflows/{name}/schema": {
            "parameters": [name_ref],
            "get": api(
                {
                    "operationId": "getWorkflowSchema",
                    "tags": ["workflows"],
                    "summary": "The JSON Schemas of the workflow's start and stop events",
                },
                {
                    "200": _json(_ref("WorkflowSchemas"), "The two schemas."),
                    "404": "NotFound",
                    "503": "Unavailable",
                },
            ),
        },
        "/workflows/{name}/events": {
            "parameters": [name_ref],
            "get": api(
                {
                    "operationId": "listWorkflowEvents",
                    "tags": ["workflows"],
                    "summary": "The JSON Schemas of every event class the workflow reads",
                },
                {
                    "200": _json(_ref("WorkflowEvents"), "One schema per class."),
                    "404": "NotFound",
                    "503": "Unavailable",
                },
            ),
        },
        "/workflows/{name}/representation": {
            "parameters": [name_ref],
            "get": api(
                {
                    "operationId": "getWorkflowRepresentation",
                    "tags": ["workflows"],
                    "summary": "The workflow's graph",
                },
                {
                    "200": _json(_ref("WorkflowRepresentation"), "The graph."),
                    "404": "NotFound",
                    "503": "Unavailable",
                },
            ),
        },
        "/handlers": {
            "get": api(
                {
                    "operationId": "listHandlers",
                    "tags": ["handlers"],
                    "summary": "The runs, running and finished, optionally filtered",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "description": (
                                "Only runs in these states (repeat the parameter, or "
                                "separate the values with commas)."
                            ),
                            "style": "form",
                            "explode": True,
                            "schema": {
                                "type": "array",
                                "items": {"type": "string", "enum": list(STATUSES)},
                            },
                        },
                        {
                            "name": "workflow_name",
                            "in": "query",
                            "required": False,
                            "description": (
                                "Only runs of these workflows (repeat the parameter, or "
                                "separate the names with commas)."
                            ),
                            "style": "form",
                            "explode": True,
                            "schema": {"type": "array", "items": {"type": "string"}},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": f"The most runs in one answer (at most {PAGE_SIZE}).",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": PAGE_SIZE,
                                "default": PAGE_SIZE,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "The `next_cursor` of the previous page.",
                            "schema": {"type": "string"},
                        },
                    ],
                },
                {
                    "200": _json(_ref("HandlersList"), "One page of the matching runs."),
                    "400": "BadRequest",
                    "503": "Unavailable",
                },
            )
        },
        "/handlers/{handler_id}": {
            "parameters": [handler_ref],
            "get": api(
                {
                    "operationId": "getHandler",
                    "tags": ["handlers"],
                    "summary": "A run's state and outcome",
                    "description": "The status code follows the run's state.",
                },
                {**handler_states, "503": "Unavailable"},
            ),
        },
        "/handlers/{handler_id}/cancel": {
            "parameters": [handler_ref],
            "post": api(
                {
                    "operationId": "cancelHandler",
                    "tags": ["handlers"],
                    "summary": "Cancel a running run, and optionally purge its records",
                    "parameters": [
                        flag(
                            "purge",
                            False,
                            "Delete the run and its records too; a finished run can only be purged",
                        )
                    ],
                },
                {
                    "200": _json(_ref("CancelResult"), "Done."),
                    "400": "BadRequest",
                    "403": "Forbidden",
                    "404": "NotFound",
                    "409": "Conflict",
                    "503": "Unavailable",
                },
            ),
        },
        "/results/{handler_id}": {
            "parameters": [handler_ref],
            "get": api(
                {
                    "operationId": "getResult",
                    "tags": ["handlers"],
                    "summary": "A run's state, with its result as a plain value",
                    "description": "The older form of GET /handlers/{handler_id}.",
                },
                {
                    "200": _json(_ref("HandlerResult"), "The run has completed."),
                    "202": _json(_ref("HandlerResult"), "The run is still going."),
                    "404": "NotFound",
                    "500": _json(_ref("HandlerResult"), "The run failed or was cancelled."),
                    "503": "Unavailable",
                },
            ),
        },
        "/events/{handler_id}": {
            "parameters": [handler_ref],
            "get": api(
                {
                    "operationId": "streamEvents",
                    "tags": ["events"],
                    "summary": "Stream the events a run publishes",
                    "description": (
                        "Each frame is an EventEnvelope: an SSE `data:` line with the "
                        "event's sequence number as its `id`, or one JSON line per event "
                        "with sse=false. The stream ends after the run's last event; an SSE "
                        "stream carries a comment as a heartbeat while nothing happens."
                    ),
                    "parameters": [
                        flag("sse", True, "Server-sent events; false: newline-delimited JSON"),
                        {
                            "name": "after_sequence",
                            "in": "query",
                            "required": False,
                            "description": (
                                "Send the events after this sequence number (-1: all of "
                                "them), or `now`: only those still to come."
                            ),
                            "schema": {
                                "anyOf": [
                                    {"type": "integer", "minimum": -1, "maximum": MAX_SEQUENCE},
                                    {"type": "string", "enum": ["now"]},
                                ],
                                "default": "now",
                            },
                        },
                        {
                            "name": "Last-Event-ID",
                            "in": "header",
                            "required": False,
                            "description": (
                                "An SSE client's reconnection: when it is a number, it "
                                "takes the place of after_sequence."
                            ),
                            "schema": {"type": "string"},
                        },
                        flag(
                            "include_qualified_name",
                            True,
                            "Fill each envelope's qualified_name; false: null",
                        ),
                        flag(
                            "include_internal",
                            False,
                            "Accepted for compatibility; the server records no internal events",
                        ),
                    ],
                },
                {
                    "200": {
                        "description": "The stream.",
                        "content": {
                            "text/event-stream": {"schema": _ref("ServerSentEvent")},
                            "application/x-ndjson": {
                                "schema": {
                                    "type": "string",
                                    "description": "One EventEnvelope in JSON per line.",
                                }
                            },
                        },
                    },
                    "204": {
                        "description": (
                            "The run has finished and there is nothing after the cursor."
                        )
                    },
                    "400": "BadRequest",
                    "404": "NotFound",
                    "503": "Unavailable",
                },
            ),
            "post": api(
                {
                    "operationId": "sendEvent",
                    "tags": ["events"],
                    "summary": "Send an event into a running run",
                    "description": (
                        "Answers once the event is recorded: it reaches the run even if the "
                        "server restarts."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": _ref("SendEventRequest")}},
                    },
                },
                {
                    "200": _json(_ref("EventSent"), "The event is delivered."),
                    "400": "BadRequest",
                    "404": "NotFound",
                    "403": "Forbidden",
                    "408": "RequestTimeout",
                    "409": "Conflict",
                    "413": "PayloadTooLarge",
                    "415": "UnsupportedMediaType",
                    "503": "Unavailable",
                },
            ),
        },
        "/openapi.json": {
            "get": public(
                {
                    "operationId": "getOpenApi",
                    "tags": ["server"],
                    "summary": "This document",
                },
                {"200": _json({"type": "object"}, "The OpenAPI document.")},
            )
        },
        "/": {
            "get": public(
                {
                    "operationId": "inspector",
                    "tags": ["inspector"],
                    "summary": "The run inspector, a web page",
                },
                {
                    "200": {
                        "description": "The page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/static/{path}": {
            "get": public(
                {
                    "operationId": "inspectorAsset",
                    "tags": ["inspector"],
                    "summary": "A file of the run inspector",
                    "parameters": [
                        {
                            "name": "path",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        }
                    ],
                },
                {
                    "200": {
                        "description": "The file.",
                        "content": {"*/*": {"schema": {"type": "string"}}},
                    },
                    "404": "NotFound",
                },
            )
        },
    }
    components: dict[str, Any] = {
        "schemas": schemas,
        "responses": responses,
        "parameters": parameters,
    }
    if secured:
        components["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's token: Authorization: Bearer <token>.",
            }
        }
    else:
        del responses["Unauthorized"]
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "anyflow workflow server",
            "version": __version__,
            "description": (
                "Runs workflows and shows them to clients, in the protocol of "
                "llama-agents-server: start runs, follow their events, answer the events "
                "they wait for, read their outcome. Every error is an Error object. A "
                "request body must be JSON (Content-Type: application/json); a "
                "state-changing request from a web page of an origin not in cors_origins "
                "is refused (403), and so is a Host the server does not answer to (400)."
            ),
        },
        "tags": [
            {"name": "server", "description": "The server itself."},
            {"name": "workflows", "description": "What is served, and starting runs."},
            {"name": "handlers", "description": "Runs, by handler id."},
            {"name": "events", "description": "Talking with a run."},
            {"name": "inspector", "description": "The web page."},
        ],
        "paths": paths,
        "components": components,
    }
    return copy.deepcopy(document)  # the caller's to change: share nothing with this module
