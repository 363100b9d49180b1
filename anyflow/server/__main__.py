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

``--token`` (or the ANYFLOW_SERVER_TOKEN environment variable), ``--cors-origin``
and ``--allowed-host`` go to the server of a workflow target, or to a function
that takes ``token``, ``cors_origins`` or ``allowed_hosts``.  A server listening
on an address other than loopback needs a token, or ``--insecure-no-token`` to
say that its network is trusted.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import ipaddress
import logging
import os
import sys
from typing import Any

import anyio

from ..durable import open_store
from ..errors import DurabilityError
from ..targets import (
    TargetError,
    load_module,
    missing_name,
    split_target,
    workflow_names,
)
from ..workflow import Workflow
from ._guard import HostPolicy
from ._server import WorkflowServer

__all__ = ["TOKEN_VARIABLE", "TargetError", "exposure_problem", "load_target", "main", "open_store"]

TOKEN_VARIABLE = "ANYFLOW_SERVER_TOKEN"


def load_target(
    target: str,
    store: str = "memory",
    dbos: str | None = None,
    executor_id: str | None = None,
    options: dict[str, Any] | None = None,
) -> WorkflowServer:
    """The server TARGET names.

    ``options`` are ``WorkflowServer`` keyword arguments given on the command
    line (``token``, ``cors_origins``, ``allowed_hosts``): they go to the
    server made for a workflow, or to a function that takes them.

    :raises TargetError: naming what is missing or wrong.
    """
    options = {k: v for k, v in (options or {}).items() if v}
    module_part, name = split_target(target)
    module = load_module(module_part)
    try:
        found = getattr(module, name)
    except AttributeError:
        servers = [n for n, v in vars(module).items() if isinstance(v, WorkflowServer)]
        names = sorted([*workflow_names(module), *servers])
        # from None: the lookup's error adds nothing to the names listed
        raise TargetError(missing_name(module_part, name, names)) from None
    if callable(found) and not isinstance(found, type | Workflow | WorkflowServer):
        parameters = inspect.signature(found).parameters
        _check_options(options, parameters, "a function without those parameters")
        taken = {k: v for k, v in options.items() if k in parameters}
        if dbos is not None:
            if "runtime" not in parameters:
                raise TargetError(
                    "--dbos is for a workflow target, or a function with a runtime parameter"
                )
            return _server(found(runtime=_dbos_runtime(dbos, executor_id), **taken), target)
        if "store" in parameters:
            return _server(found(store=open_store(store), **taken), target)
        found = found(**taken)
        options = {}
    elif isinstance(found, type) and issubclass(found, Workflow):
        found = found()
    if dbos is not None and not isinstance(found, Workflow):
        raise TargetError(
            "--dbos is for a workflow target, or a function with a runtime parameter; "
            "this WorkflowServer has its own runtime"
        )
    if isinstance(found, WorkflowServer):
        _check_options(options, {}, "this WorkflowServer, which has its own")
        if store != "memory":
            raise TargetError(
                "--store is for a workflow target, or a function with a store parameter; "
                "this WorkflowServer has its own"
            )
        return found
    if isinstance(found, Workflow) and dbos is not None:
        if store != "memory":
            raise TargetError("pass --store or --dbos, not both")
        server = WorkflowServer(runtime=_dbos_runtime(dbos, executor_id), **options)
        server.add_workflow(type(found).__name__, found)
        return server
    if isinstance(found, Workflow):
        server = WorkflowServer(open_store(store), **options)
        server.add_workflow(type(found).__name__, found)
        return server
    return _server(found, target)


_OPTION_FLAGS = {
    "token": "--token",
    "cors_origins": "--cors-origin",
    "allowed_hosts": "--allowed-host",
}


def _check_options(options: dict[str, Any], parameters: Any, what: str) -> None:
    refused = [_OPTION_FLAGS[k] for k in options if k not in parameters]
    if refused:
        raise TargetError(
            f"{', '.join(refused)} cannot go to {what}: pass "
            f"{', '.join(k for k in options if k not in parameters)} to WorkflowServer "
            f"yourself, or serve a workflow target (the {TOKEN_VARIABLE} environment "
            "variable counts as --token)"
        )


def exposure_problem(host: str, token: str | None, insecure: bool) -> str | None:
    """Why serving on ``host`` is refused, or None: an address other than
    loopback lets the network in, and without a token anyone on it may start,
    read and cancel runs."""
    if token or insecure:
        return None
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return None
    try:
        if ipaddress.ip_address(name).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything
    return (
        f"refusing to listen on {host} without a token: anyone who can reach it could "
        f"start, read and cancel runs; pass --token (or set {TOKEN_VARIABLE}), or "
        "--insecure-no-token if that network is trusted"
    )


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
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE) or None,
        help=f"require Authorization: Bearer TOKEN on API requests (default: ${TOKEN_VARIABLE})",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web origin whose pages may use the API (repeatable)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name served besides loopback and --host ('*': any; repeatable)",
    )
    parser.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="listen on a non-loopback address without a token (a trusted network only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        print("error: --backend trio needs trio: pip install 'anyflow[trio]'", file=sys.stderr)
        return 2
    if args.dbos is not None and args.backend != "asyncio":
        print(
            "error: --dbos runs on asyncio only (DBOS's async API needs it); drop "
            "--backend trio, or use --store for a trio server",
            file=sys.stderr,
        )
        return 2
    options = {
        "token": args.token,
        "cors_origins": args.cors_origin,
        "allowed_hosts": args.allowed_host,
    }
    try:
        HostPolicy(args.allowed_host)  # checked before anything is loaded or opened
    except ValueError as exc:
        print(f"error: --allowed-host: {exc}", file=sys.stderr)
        return 2
    try:
        server = load_target(args.target, args.store, args.dbos, args.executor_id, options)
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = exposure_problem(args.host, server.token, args.insecure_no_token)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    async def run() -> None:
        await server.serve(args.host, args.port, task_status=_Announce())

    try:
        anyio.run(run, backend=args.backend)
    except (OSError, DurabilityError) as exc:
        # A port taken, a store that cannot be opened: one line, before any
        # "serving on" (the store is opened before the socket listens).
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


class _Announce:
    """Prints the URL once the socket listens (tests and scripts wait for it)."""

    def started(self, value: str | None = None) -> None:
        print(f"serving on {value}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
