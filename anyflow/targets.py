"""Finding the workflow a TARGET names (``module:name`` or ``path/to/file.py:name``).

The ``anyflow`` command, ``python -m anyflow.server`` and ``DBOSRuntime`` (which
rebuilds a recovered run's workflow by the name it recorded) all find
workflows this way, so it lives in the engine, below all three, rather than in
any one of them.  Opening a ``--store`` URL is ``anyflow.durable.open_store``.
"""

from __future__ import annotations

from ._targets import TargetError as TargetError
from ._targets import load_module as load_module
from ._targets import load_workflow as load_workflow
from ._targets import missing_name as missing_name
from ._targets import split_target as split_target
from ._targets import workflow_names as workflow_names

__all__ = [
    "TargetError",
    "load_module",
    "load_workflow",
    "missing_name",
    "split_target",
    "workflow_names",
]
