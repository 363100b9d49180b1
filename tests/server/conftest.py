from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import pytest
from anyio.from_thread import start_blocking_portal

from anyflow.server import WorkflowServer

from .flows import Answer, Ask, Count, Fail, Greet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@contextlib.contextmanager
def serving(server: WorkflowServer, backend: str) -> Iterator[str]:
    """Serve ``server`` on a free port from a thread running ``backend``; its URL.

    The server has its own event loop, as a real one would: a test's client
    on asyncio can talk to a server on trio, and a blocking call in the test
    cannot stall the server.
    """
    with start_blocking_portal(backend=backend) as portal:
        serve = functools.partial(server.serve, port=0, handle_signals=False)
        future, url = portal.start_task(serve, name="anyflow test server")
        try:
            yield url
        finally:
            portal.call(server.stop)
            future.result(timeout=30)


def demo_server(**options: object) -> WorkflowServer:
    server = WorkflowServer(**options)  # type: ignore[arg-type]
    server.add_workflow("greet", Greet())
    server.add_workflow("count", Count())
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    server.add_workflow("fail", Fail())
    return server


@pytest.fixture
def backend_name(anyio_backend: tuple[str, dict[str, object]]) -> str:
    return anyio_backend[0]


@pytest.fixture
def serve(backend_name: str) -> Iterator[Callable[[WorkflowServer], str]]:
    """``serve(server) -> url``: the server runs on the test's backend until the test ends.

    Call it from a sync fixture, not from an async test: under trio the blocking
    portal cannot be driven from inside the event loop (it would hang).
    """
    with contextlib.ExitStack() as stack:
        yield lambda server: stack.enter_context(serving(server, backend_name))


@pytest.fixture
def url(serve: Callable[[WorkflowServer], str]) -> str:
    """The URL of a fresh in-memory ``demo_server()``."""
    return serve(demo_server())
