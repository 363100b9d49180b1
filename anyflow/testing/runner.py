"""``WorkflowTestRunner`` and its ``WorkflowTestResult`` (the incumbent's
``workflows.testing.runner``)."""

from __future__ import annotations

from ._runner import WorkflowTestResult as WorkflowTestResult
from ._runner import WorkflowTestRunner as WorkflowTestRunner

__all__ = ["WorkflowTestResult", "WorkflowTestRunner"]
