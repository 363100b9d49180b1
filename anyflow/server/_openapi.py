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

The document's parts live by what they depend on: ``_openapi_components.py``
holds what is the same for every server (the protocol's body schemas, the
shared responses), ``_openapi_paths.py`` the operations, route by route; this
module adds what the served workflows make precise and assembles the whole.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..serialization import event_schema
from ._envelope import qualified_name
from ._ids import HANDLER_ID_PATTERN, MAX_HANDLER_ID
from ._openapi_components import BASE_RESPONSES, BASE_SCHEMAS, SCHEMAS, ref
from ._openapi_paths import path_items

if TYPE_CHECKING:
    from ._server import WorkflowServer

__all__ = ["openapi"]


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
    schemas = dict(BASE_SCHEMAS)
    responses = dict(BASE_RESPONSES)
    taken = set(schemas)

    # What the served workflows make precise.
    start_refs = []
    type_names: set[str] = set()
    qualified_names: set[str] = set()
    for name, served in server._served.items():
        key = _component_key("StartEvent", name, taken)
        schema = _rerooted(event_schema(served.workflow.start_event_class), SCHEMAS + key)
        schema["description"] = f"The fields of the start event of workflow {name!r}."
        schemas[key] = schema
        start_refs.append(ref(key))
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
                "anyOf": [*start_refs, ref("EventInput")],
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
    paths = path_items(secured=secured)
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
