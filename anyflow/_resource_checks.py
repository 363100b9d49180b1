"""What ``Workflow.validate()`` reports about a workflow's resources.

Kept apart from ``resources`` because it is a check run on demand, not part
of making values: it walks every step's resource parameters for cycles and
parameters nobody fills, reads configs, and, if asked, makes every resource
once in a worker thread with an event loop of its own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import anyio

from ._resource_config import ResourceConfig
from .errors import ResourceError
from .resources import ResourceDescriptor, ResourceManager, RunResources, check_plan

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._steps import StepInfo

__all__ = ["check_resources"]


def check_resources(
    steps: Mapping[str, StepInfo],
    manager: ResourceManager | None,
    *,
    configs: bool = True,
    factories: bool = False,
) -> tuple[list[str], list[str]]:
    """What ``Workflow.validate()`` reports about resources: (problems reading
    configs, problems with the factories), each a line naming the step and
    the parameter.

    The factories' shape (cycles, parameters nobody fills) is always checked;
    ``configs`` reads every ``ResourceConfig``; ``factories`` makes every
    resource, in a worker thread with an event loop of its own (the values are
    closed again and thrown away), so it can be called from sync or async code.
    """
    config_problems: list[str] = []
    shape: list[str] = []
    for step_name, info in steps.items():
        for param, resource in info.resources:
            where = f"In step {step_name!r}, parameter {param!r}"
            try:
                check_plan(resource)
            except ResourceError as exc:
                shape.append(f"{where}: {exc}")
                continue
            if configs:
                config_problems += [f"{where}: {p}" for p in _config_problems(resource)]
    if factories and not shape and not config_problems:
        shape = _in_thread(steps, manager)
    return config_problems, shape


def _config_problems(resource: ResourceDescriptor) -> list[str]:
    if isinstance(resource, ResourceConfig):
        try:
            resource.load()
        except Exception as exc:
            return [f"config {resource.name}: {type(exc).__name__}: {exc}"]
        return []
    problems: list[str] = []
    for _, dep in resource.dependencies():
        problems += _config_problems(dep)
    return problems


def _in_thread(steps: Mapping[str, StepInfo], manager: ResourceManager | None) -> list[str]:
    from ._backends._current import current_backend

    backend = current_backend() or "asyncio"
    problems: list[str] = []
    failure: list[BaseException] = []

    async def make_all() -> None:
        runs = RunResources(manager)
        try:
            for step_name, info in steps.items():
                for param, resource in info.resources:
                    try:
                        await runs.value(step_name, param, resource, runs._opened, {})
                    except ResourceError as exc:
                        cause = exc.__cause__
                        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
                        problems.append(f"In step {step_name!r}, parameter {param!r}: {detail}")
        finally:
            await runs.aclose()

    def run() -> None:
        try:
            anyio.run(make_all, backend=backend)
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="anyflow-validate-resources")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return problems
