"""The commands, and how errors reach the user: one line, ``error: ...``,
exit status 2 for bad input and 1 for a run that failed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path  # noqa: TC003 - cyclopts reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Literal

import anyio
import cyclopts
from cyclopts import Parameter
from rich.console import Console

from ..targets import TargetError, load_workflow
from ._errors import CliError

if TYPE_CHECKING:
    from ..workflow import Workflow

__all__ = ["app", "run_app"]

Backend = Literal["asyncio", "trio"]
STORE_HELP = "The durable store: sqlite:///path/to/runs.db or postgresql://..."

app = cyclopts.App(
    name="anyflow",
    help="Run, draw, serve and inspect anyflow workflows.",
    version_flags=[],
)
runs_app = cyclopts.App(name="runs", help="Runs recorded in a durable store.")
app.command(runs_app)


def _check_backend(backend: Backend) -> None:
    """anyio's backends other than asyncio are other packages: name the extra."""
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise CliError("--backend trio needs trio: pip install 'anyflow[trio]'")


def _workflow(target: str) -> Workflow:
    try:
        return load_workflow(target)
    except TargetError as exc:
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(str(exc)) from None


@app.command
def run(
    target: str,
    /,
    *,
    input: Annotated[str | None, Parameter(name="--input")] = None,
    backend: Backend = "asyncio",
    json: bool = False,
) -> int:
    """Run a workflow to its end, showing steps and events as they happen.

    Parameters
    ----------
    target
        module:Workflow or path/to/file.py:Workflow (a class or an instance).
    input
        The start event's fields, as a JSON object.
    backend
        The async library to run on.
    json
        Machine output: one JSON object per line, the last {"result": ...}.
    """
    from ._run import parse_input, run_workflow

    _check_backend(backend)
    fields = parse_input(input)
    return run_workflow(_workflow(target), fields, backend=backend, as_json=json)


@app.command
def draw(
    target: str,
    /,
    *,
    output: Annotated[Path, Parameter(name=["--output", "-o"])],
    run: str | None = None,
    store: str | None = None,
) -> int:
    """Draw a workflow's graph, or what one recorded run of it did.

    Parameters
    ----------
    target
        module:Workflow or path/to/file.py:Workflow.
    output
        FILE.mmd (Mermaid text) or FILE.html (a page that opens offline).
    run
        A run id (see `anyflow runs list`): draw that run over the graph, each step
        with its order, attempts and failures. Needs --store.
    store
        The durable store that recorded --run: sqlite:///path/to/runs.db or postgresql://...
    """
    from ._draw import check_output
    from ._draw import draw as draw_graph

    if (run is None) != (store is None):
        missing = "--store (the store that recorded it)" if store is None else "--run RUN_ID"
        raise CliError(f"drawing a recorded run takes both --run and --store: add {missing}")
    check_output(output)
    workflow = _workflow(target)
    recorded = None
    if run is not None and store is not None:
        from ._runs import read_run_graph

        recorded = anyio.run(read_run_graph, store, run, workflow)
    draw_graph(workflow, output, recorded)
    print(f"wrote {output}")
    return 0


@app.command
def serve(
    target: str,
    /,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    backend: Backend = "asyncio",
    store: str = "memory",
    token: str | None = None,
    cors_origin: Annotated[list[str] | None, Parameter(negative=())] = None,
    allowed_host: Annotated[list[str] | None, Parameter(negative=())] = None,
    insecure_no_token: Annotated[bool, Parameter(negative=())] = False,
) -> int:
    """Serve a workflow (or a WorkflowServer) over HTTP, as python -m anyflow.server does.

    Parameters
    ----------
    target
        module:name or path/to/file.py:name: a WorkflowServer, a workflow, or a function
        returning either.
    store
        memory, sqlite:///path/to/runs.db or postgresql://...
    token
        Require Authorization: Bearer TOKEN on API requests (default: $ANYFLOW_SERVER_TOKEN).
    cors_origin
        A web origin whose pages may use the API (repeatable).
    allowed_host
        A Host name served besides loopback and --host ('*': any; repeatable).
    insecure_no_token
        Listen on a non-loopback address without a token (a trusted network only).
    """
    _check_backend(backend)
    try:
        from ..server.__main__ import main as serve_main
    except ImportError as exc:
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(
            f"serving needs the server extra ({exc.name} is missing): pip install 'anyflow[server]'"
        ) from None
    argv = [target, "--host", host, "--port", str(port), "--backend", backend, "--store", store]
    if token is not None:
        argv += ["--token", token]
    argv += [f"--cors-origin={origin}" for origin in cors_origin or ()]
    argv += [f"--allowed-host={name}" for name in allowed_host or ()]
    if insecure_no_token:
        argv.append("--insecure-no-token")
    return serve_main(argv)


@runs_app.command(name="list")
def list_(*, store: Annotated[str, Parameter(help=STORE_HELP)]) -> int:
    """List the runs a durable store recorded, oldest first."""
    from ._runs import list_runs

    anyio.run(list_runs, store, Console(soft_wrap=True, highlight=False))
    return 0


@runs_app.command
def show(run_id: str, /, *, store: Annotated[str, Parameter(help=STORE_HELP)]) -> int:
    """Show one recorded run: its record and the events it published."""
    from ._runs import show_run

    anyio.run(show_run, store, run_id, Console(soft_wrap=True, highlight=False))
    return 0


@app.command
def replay(
    run_id: str,
    /,
    *,
    store: Annotated[str, Parameter(help=STORE_HELP)],
    to_tick: int | None = None,
    workflow: str | None = None,
) -> int:
    """Replay a recorded run tick by tick.

    Parameters
    ----------
    run_id
        The run, as `anyflow runs list` shows it.
    to_tick
        Stop after this tick (counted from 0).
    workflow
        module:Workflow or path/to/file.py:Workflow, the run's workflow: with it,
        the state after each tick; without it, the ticks alone (nothing is imported).
    """
    from ._runs import replay_run

    wf = None if workflow is None else _workflow(workflow)
    anyio.run(replay_run, store, run_id, wf, to_tick, Console(soft_wrap=True, highlight=False))
    return 0


def run_app(argv: list[str] | None = None) -> int:
    """Run the command line; bad input is one line on stderr, never a traceback."""
    tokens = sys.argv[1:] if argv is None else argv
    try:
        status = app(tokens, exit_on_error=False, print_error=False, result_action="return_value")
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except cyclopts.CycloptsError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message} (see anyflow --help)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        if "pip install 'anyflow[" not in str(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)  # an extra this command needs is missing
        return 2
    return status if isinstance(status, int) else 0
