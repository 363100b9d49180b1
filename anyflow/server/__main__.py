"""``python -m anyflow.server TARGET``: serve a WorkflowServer or a workflow.

TARGET is ``module:name`` or ``path/to/file.py:name``, naming a
``WorkflowServer``, a workflow (class or instance: served under its class
name) or a function returning either.  ``--store`` gives the durable store:
``memory`` (the default), ``sqlite:///runs.db`` or a ``postgresql://`` URL; it
goes to a workflow target's server, or to a function that takes ``store``.
``--dbos URL`` (asyncio only) records and executes the runs in DBOS instead,
so that several server processes share them (for a workflow target, or a
function that takes ``runtime``); ``--executor-id`` names this process to
DBOS (the id of a dead one recovers its runs).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from typing import Any

import anyio

from ..cli._target import TargetError, load_module, open_store, split_target
from ..workflow import Workflow
from ._server import WorkflowServer

__all__ = ["TargetError", "load_target", "main", "open_store"]


def load_target(
    target: str,
    store: str = "memory",
    dbos: str | None = None,
    executor_id: str | None = None,
) -> WorkflowServer:
    """The server TARGET names.

    :raises TargetError: naming what is missing or wrong.
    """
    module_part, name = split_target(target)
    module = load_module(module_part)
    try:
        found = getattr(module, name)
    except AttributeError:
        raise TargetError(f"{module_part!r} has no {name!r}") from None
    if callable(found) and not isinstance(found, type | Workflow | WorkflowServer):
        parameters = inspect.signature(found).parameters
        if dbos is not None:
            if "runtime" not in parameters:
                raise TargetError(
                    "--dbos is for a workflow target, or a function with a runtime parameter"
                )
            return _server(found(runtime=_dbos_runtime(dbos, executor_id)), target)
        if "store" in parameters:
            return _server(found(store=open_store(store)), target)
        found = found()
    elif isinstance(found, type) and issubclass(found, Workflow):
        found = found()
    if dbos is not None and not isinstance(found, Workflow):
        raise TargetError(
            "--dbos is for a workflow target, or a function with a runtime parameter; "
            "this WorkflowServer has its own runtime"
        )
    if isinstance(found, WorkflowServer):
        if store != "memory":
            raise TargetError(
                "--store is for a workflow target, or a function with a store parameter; "
                "this WorkflowServer has its own"
            )
        return found
    if isinstance(found, Workflow) and dbos is not None:
        if store != "memory":
            raise TargetError("pass --store or --dbos, not both")
        server = WorkflowServer(runtime=_dbos_runtime(dbos, executor_id))
        server.add_workflow(type(found).__name__, found)
        return server
    if isinstance(found, Workflow):
        server = WorkflowServer(open_store(store))
        server.add_workflow(type(found).__name__, found)
        return server
    return _server(found, target)


def _dbos_runtime(url: str, executor_id: str | None) -> Any:
    from ..dbos import DBOSRuntime

    return DBOSRuntime(name="anyflow-server", database_url=url, executor_id=executor_id)


def _server(found: Any, target: str) -> WorkflowServer:
    if not isinstance(found, WorkflowServer):
        raise TargetError(
            f"{target} is {found!r}, not a WorkflowServer or a Workflow (class or instance)"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anyflow.server", description=__doc__)
    parser.add_argument("target", help="module:name or path/to/file.py:name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--store", default="memory", help="memory, sqlite:///file or postgresql://")
    parser.add_argument("--dbos", help="run in DBOS: sqlite:///file or postgresql:// (asyncio)")
    parser.add_argument("--executor-id", help="this process's DBOS executor id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.dbos is not None and args.backend != "asyncio":
        print(
            "error: --dbos runs on asyncio only (DBOS's async API needs it); drop "
            "--backend trio, or use --store for a trio server",
            file=sys.stderr,
        )
        return 2
    try:
        server = load_target(args.target, args.store, args.dbos, args.executor_id)
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        await server.serve(args.host, args.port, task_status=_Announce())

    try:
        anyio.run(run, backend=args.backend)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


class _Announce:
    """Prints the URL once the socket listens (tests and scripts wait for it)."""

    def started(self, value: str | None = None) -> None:
        print(f"serving on {value}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
