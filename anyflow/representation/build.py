"""``get_workflow_representation`` (the incumbent's ``workflows.representation.build``)."""

from __future__ import annotations

from ._build import get_workflow_representation as get_workflow_representation

__all__ = ["get_workflow_representation"]
