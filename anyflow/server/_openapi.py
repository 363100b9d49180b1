"""The OpenAPI document of the protocol (``GET /openapi.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import WorkflowServer

__all__ = ["openapi"]


def openapi(server: WorkflowServer) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "anyflow workflow server", "version": "0.1.0"},
        "paths": {},
    }
