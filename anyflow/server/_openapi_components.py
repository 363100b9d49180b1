"""The parts of the OpenAPI document that do not depend on the served
workflows: the schemas of the protocol's bodies and the responses that many
operations share, and the helpers that write references to them.
(``_openapi.py`` assembles the document.)
"""

from __future__ import annotations

from typing import Any

from ._handler_views import STATUSES
from ._routes import MAX_DEPTH

__all__ = [
    "BASE_RESPONSES",
    "BASE_SCHEMAS",
    "JSON",
    "SCHEMAS",
    "error_response",
    "json_response",
    "nullable",
    "ref",
]

JSON = "application/json"
SCHEMAS = "#/components/schemas/"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"{SCHEMAS}{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    return json_response(ref("Error"), description)


# Component schemas that do not depend on the served workflows.

_DATE_TIME = {"type": "string", "format": "date-time"}

_HANDLER_FIELDS: dict[str, Any] = {
    "handler_id": {"type": "string"},
    "workflow_name": {"type": "string"},
    "run_id": {"type": "string", "description": "The same as handler_id."},
    "status": {"type": "string", "enum": list(STATUSES)},
    "started_at": _DATE_TIME,
    "updated_at": nullable(_DATE_TIME),
    "completed_at": nullable(_DATE_TIME),
    "error": {"type": ["string", "null"]},
    "result_unreadable": {
        "type": "boolean",
        "description": (
            "True when the run's records cannot be read back (damaged): `error` says "
            "why, and `result` is null. The other runs are listed as usual."
        ),
    },
}

BASE_SCHEMAS: dict[str, dict[str, Any]] = {
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
            "the event classes it derives from (nearest first; null when it derives from "
            "no event class but Event, as the incumbent writes it) and its importable name "
            "(null in a stream asked for without qualified names)."
        ),
        "properties": {
            "type": {"type": "string"},
            "value": {"type": "object"},
            "types": {"type": ["array", "null"], "items": {"type": "string"}},
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
        "properties": {**_HANDLER_FIELDS, "result": nullable(ref("EventEnvelope"))},
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
            "handlers": {"type": "array", "items": ref("Handler")},
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
        "properties": {"graph": ref("WorkflowGraph")},
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
                "contentSchema": ref("EventEnvelope"),
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
                "anyOf": [ref("EventInput"), {"type": "string", "minLength": 1}],
            },
            "step": {
                "type": "string",
                "description": "Deliver the event to this step only.",
            },
        },
        "required": ["event"],
    },
}

BASE_RESPONSES: dict[str, dict[str, Any]] = {
    "BadRequest": error_response(
        "The request cannot be read: a body that is not a JSON object (NaN, Infinity and "
        f"lone surrogate escapes are not JSON; nor is nesting deeper than {MAX_DEPTH} "
        "levels accepted), a query parameter out of its range, an event the workflow "
        "does not take, or a value the run's journal could not record (a number beyond "
        "a double's range such as 1e400, a field that does not fit its type); the start "
        "event sent into a run; or a `Host` the server does not answer to (allowed_hosts)."
    ),
    "Unauthorized": {
        **error_response("The server has a token and the request did not carry it."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "NotFound": error_response("No workflow, or no handler, by that name."),
    "Conflict": error_response("The request does not fit the handler's state."),
    "PayloadTooLarge": error_response("The body is over the server's limit (max_body_bytes)."),
    "Forbidden": error_response(
        "The request comes from a web page of another origin (its `Origin` header) that "
        "is not in the server's cors_origins."
    ),
    "RequestTimeout": error_response(
        "The body did not arrive whole within the server's body_timeout; the connection is closed."
    ),
    "UnsupportedMediaType": error_response(
        "The request has a body that is not declared JSON: send Content-Type: application/json."
    ),
    "Unavailable": {
        **error_response(
            "The server is not running, or is shutting down; or its store fails (a full "
            "disk, a database down): nothing of the request was recorded, retry after "
            "`Retry-After` seconds. The runs the failure stopped go on once the store works."
        ),
        "headers": {"Retry-After": {"schema": {"type": "string"}}},
    },
}
