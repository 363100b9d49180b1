"""The operations of the OpenAPI document, route by route: what each of
``_routes.py``'s routes takes and answers, status code by status code.
(``_openapi.py`` assembles the document.)
"""

from __future__ import annotations

from typing import Any

from ._handler_views import STATUSES
from ._openapi_components import JSON, json_response, ref
from ._routes import MAX_SEQUENCE, PAGE_SIZE

__all__ = ["path_items"]


def path_items(*, secured: bool) -> dict[str, Any]:
    """The document's ``paths``.  ``secured``: the server has a token, so every
    API operation declares the bearer scheme and its 401 (the health check,
    this document and the inspector's files need none)."""

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
        "content": {JSON: {"schema": ref("RunRequest")}},
    }
    handler_states = {
        "200": json_response(ref("Handler"), "The run has completed."),
        "202": json_response(ref("Handler"), "The run is still going."),
        "404": "NotFound",
        "500": json_response(ref("Handler"), "The run failed or was cancelled (see `error`)."),
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
                    "200": json_response(
                        ref("Health"), "The server is serving, and its store works."
                    ),
                    "503": {
                        **json_response(
                            ref("Health"),
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
                {"200": json_response(ref("WorkflowList"), "The names, in registration order.")},
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
                    "200": json_response(ref("Handler"), "The run completed."),
                    "400": "BadRequest",
                    "404": "NotFound",
                    "403": "Forbidden",
                    "408": "RequestTimeout",
                    "409": "Conflict",
                    "413": "PayloadTooLarge",
                    "415": "UnsupportedMediaType",
                    "500": json_response(ref("Handler"), "The run failed or was cancelled."),
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
                    "200": json_response(ref("Handler"), "The run has started."),
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
                    "200": json_response(ref("WorkflowSchemas"), "The two schemas."),
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
                    "200": json_response(ref("WorkflowEvents"), "One schema per class."),
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
                    "200": json_response(ref("WorkflowRepresentation"), "The graph."),
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
                    "200": json_response(ref("HandlersList"), "One page of the matching runs."),
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
                    "200": json_response(ref("CancelResult"), "Done."),
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
                    "200": json_response(ref("HandlerResult"), "The run has completed."),
                    "202": json_response(ref("HandlerResult"), "The run is still going."),
                    "404": "NotFound",
                    "500": json_response(ref("HandlerResult"), "The run failed or was cancelled."),
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
                            "text/event-stream": {"schema": ref("ServerSentEvent")},
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
                        "content": {JSON: {"schema": ref("SendEventRequest")}},
                    },
                },
                {
                    "200": json_response(ref("EventSent"), "The event is delivered."),
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
                {"200": json_response({"type": "object"}, "The OpenAPI document.")},
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
    return paths
