"""``WorkflowServer``: hosts workflows' runs and serves them over HTTP.

The server is an ASGI application (Starlette) over a ``DurableRuntime``: the
runtime executes and records the runs, the ``RunBook`` maps the protocol's
handlers onto them, and the routes speak the protocol.  Everything lives in the
application's lifespan: runs, their watchers and the event streams start and
end inside it, so a server that stops leaves nothing running, and its
unfinished runs resume at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..durable import DurableRuntime, MemoryStore, RunCatalog, Store
from ..errors import StoreUnavailableError
from ..events import Event, StopEvent
from ..runtime import Runtime, RuntimeDecorator
from ..runtime.hosting import HeldOpen
from ..serialization import type_name
from ._application import Application, Session, client_gone, http_error, internal_error
from ._auth import BearerAuth
from ._envelope import EventRegistry
from ._guard import HostPolicy, RequestGuard
from ._openapi import openapi
from ._routes import routes
from ._runs import RunBook, Served

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Callable,
        Generator,
        Iterable,
        Iterator,
        Sequence,
    )
    from typing import Any

    from starlette.applications import Starlette
    from starlette.requests import Request

    from ..workflow import Workflow

__all__ = ["WorkflowServer"]

log = logging.getLogger("anyflow.server")

STATIC = Path(__file__).parent / "static"


class WorkflowServer:
    """Serves workflows' runs over HTTP, in the protocol of llama-agents-server.

    ::

        server = WorkflowServer(store=SqliteStore("runs.db"))   # default: in memory
        server.add_workflow("greet", Greet(), additional_events=[Answer])
        await server.serve(host="127.0.0.1", port=8080)        # asyncio or trio

    :param store: where runs are recorded (a ``MemoryStore`` by default; a
        ``SqliteStore`` or ``PostgresStore`` keeps them across restarts).
    :param token: if given, every API request needs ``Authorization: Bearer <token>``.
    :param cors_origins: origins allowed to call the API from a browser (none by
        default; the server's own origin, the inspector's, always may).  A
        state-changing request from any other origin is a 403.
    :param allowed_hosts: the ``Host`` names served besides the loopback names
        and the address the server listens on (400 for others: DNS rebinding);
        ``["*"]`` serves any.
    :param max_body_bytes: the largest request body accepted (413 above it).
    :param body_timeout: seconds a client has to send a whole request body once
        it started (408 and the connection closed after that).
    :param heartbeat: seconds between keep-alive comments on an idle SSE stream.
    :param idle_timeout: seconds after which a run that only waits for input
        (an answer, an event) is released from memory; it is resumed from its
        journal when an event for it arrives or a deadline of it comes.  None
        keeps every run in memory.
    :param lease: the durable runtime's lease (see ``DurableRuntime``).
    :param store_retry: seconds between tries of a store that failed (a full
        disk, a database down); requests it cannot record meanwhile get a 503
        with this ``Retry-After``, and the runs it stopped resume once it works.
    :param runtime: instead of a store, the runtime runs are recorded and
        executed in: a ``Runtime`` that is also an ``anyflow.durable.RunCatalog``
        (the server reads the runs' records through it).  A ``DBOSRuntime``,
        so that several server processes share runs through DBOS (any of them
        takes a run's events and streams it, wherever it executes).  Entered
        and left with the server.  Runs on a given runtime are not released
        when idle: a run waiting for input stays with the process that
        executes it, and messages reach it there.
    :param workflow_store: the incumbent's name of ``store`` (one or the other).
    :param accept_context_api: the incumbent's switch for runs started from a
        posted context; only False, its default, is accepted (a body with a
        ``context`` is a 400): the server takes no context.
    :param decorate_runtime: wraps the runtime runs execute in (the server's
        ``DurableRuntime``, or ``runtime``) in runtime decorators, once, when
        the server starts: ``decorate_runtime=lambda rt: TracingRuntime(rt)``
        traces every served run (a span per run and per step attempt).  It
        must return a decorator of the runtime it is given (its ``inner``, or
        an ``inner`` of that): runs are recorded by the runtime inside.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        token: str | None = None,
        cors_origins: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
        max_body_bytes: int = 1 << 20,
        body_timeout: float = 10.0,
        heartbeat: float = 15.0,
        idle_timeout: float | None = 60.0,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        store_retry: float = 2.0,
        runtime: RunCatalog | None = None,
        decorate_runtime: Callable[[Runtime], Runtime] | None = None,
        workflow_store: Store | None = None,
        accept_context_api: bool = False,
    ) -> None:
        if accept_context_api:
            raise ValueError(
                "accept_context_api=True: anyflow's server does not start a run from a posted "
                "context (a run's state lives in the server's store; to go on from a run, send "
                "events to its handler); leave accept_context_api out (docs/server.md)"
            )
        if workflow_store is not None:
            if store is not None:
                raise ValueError(
                    "pass store or workflow_store (the incumbent's name for it), not both"
                )
            if not isinstance(workflow_store, Store):
                raise TypeError(
                    "workflow_store takes an anyflow store (MemoryStore, SqliteStore, "
                    "PostgresStore, or anyflow.server.memory_workflow_store."
                    f"MemoryWorkflowStore), not {type(workflow_store).__qualname__}: "
                    "the incumbent's AbstractWorkflowStore subclasses do not record "
                    "anyflow's journal (docs/migration.md)"
                )
            store = workflow_store
        if max_body_bytes <= 0 or heartbeat <= 0 or body_timeout <= 0:
            raise ValueError("max_body_bytes, body_timeout and heartbeat must be > 0")
        if isinstance(cors_origins, str) or isinstance(allowed_hosts, str):
            raise TypeError("cors_origins and allowed_hosts are lists of strings, not a string")
        if runtime is not None and store is not None:
            raise ValueError(
                "pass a store or a runtime, not both: a DBOSRuntime keeps its runs in DBOS"
            )
        if runtime is not None and not (
            isinstance(runtime, Runtime) and isinstance(runtime, RunCatalog)
        ):
            raise TypeError(
                "runtime takes a runtime that records its runs and reads them back (a "
                "Runtime that is an anyflow.durable.RunCatalog: DBOSRuntime, DurableRuntime), "
                f"not {type(runtime).__qualname__}; to record runs in a store, pass store="
            )
        self.store = store if store is not None else MemoryStore()
        self.runtime = runtime
        """The runtime given as ``runtime=``, or None (a ``DurableRuntime``
        over ``store`` is made at start)."""
        if runtime is not None:
            idle_timeout = None
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.hosts = HostPolicy(allowed_hosts)
        """The Host names served; ``serve()`` adds the address it listens on."""
        self.heartbeat = heartbeat
        if idle_timeout is not None and idle_timeout < 0:
            raise ValueError("idle_timeout is seconds >= 0, or None")
        self.idle_timeout = idle_timeout
        self._lease = lease
        self._poll_interval = poll_interval
        if store_retry <= 0:
            raise ValueError("store_retry is seconds > 0")
        self.store_retry = store_retry
        if decorate_runtime is not None and not callable(decorate_runtime):
            raise TypeError(
                "decorate_runtime takes a function from a runtime to a runtime decorator "
                f"wrapping it (lambda rt: TracingRuntime(rt)), not {decorate_runtime!r}"
            )
        self.decorate_runtime = decorate_runtime
        self._served: dict[str, Served] = {}
        self._classes: dict[str, str] = {}
        self._runs: RunBook | None = None
        self._streams: set[anyio.CancelScope] = set()
        self._closing = False
        self._stop: anyio.Event | None = None
        self._lifespan_open = False
        self._on_demand: Session | None = None
        middleware = [Middleware(BearerAuth, token=token)]
        if cors_origins:
            middleware.insert(
                0,
                Middleware(
                    CORSMiddleware,
                    allow_origins=list(cors_origins),
                    allow_methods=["GET", "POST"],
                    allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                ),
            )
        middleware.insert(0, Middleware(RequestGuard, hosts=self.hosts, cors_origins=cors_origins))
        self.app = Application(
            self,
            routes=[
                *routes(self),
                Route("/openapi.json", self._openapi, methods=["GET"]),
                Route("/", self._inspector, methods=["GET"]),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
            ],
            middleware=middleware,
            lifespan=self._lifespan,
            exception_handlers={
                HTTPException: http_error,
                ClientDisconnect: client_gone,
                StoreUnavailableError: self._store_unavailable,
                Exception: internal_error,
            },
        )
        """The ASGI application."""

    # Registration.

    def add_workflow(
        self, name: str, workflow: Workflow, *, additional_events: Iterable[type[Event]] = ()
    ) -> None:
        """Serve ``workflow`` as ``name``.

        ``additional_events`` are event types clients may send that no step
        accepts (answers to ``ctx.wait_for_event``).

        :raises ValueError: for a name taken, or a workflow class served already
            (a durable store tells runs apart by class: subclass it to serve twice).
        """
        if self._runs is not None and self.runtime is not None:
            raise RuntimeError(
                "add workflows before the server starts: a DBOSRuntime registers "
                "its workflows when it is entered"
            )
        if not name or "/" in name or name != name.strip():
            raise ValueError(f"a workflow name is a non-empty path segment, not {name!r}")
        if name in self._served:
            raise ValueError(f"a workflow is served as {name!r} already")
        cls_name = type_name(type(workflow))
        if cls_name in self._classes:
            raise ValueError(
                f"{type(workflow).__qualname__} is served as {self._classes[cls_name]!r} already; "
                "runs are recorded by workflow class, so serve a subclass under another name"
            )
        extra = list(additional_events)
        for cls in extra:
            if not (isinstance(cls, type) and issubclass(cls, Event)):
                raise TypeError(f"additional_events takes Event classes, not {cls!r}")
        events: list[type[Event]] = [workflow.start_event_class]
        for info in type(workflow).steps().values():
            events += [*info.accepts, *info.returns]
        served = Served(name, workflow, EventRegistry([*events, *extra]))
        self._served[name] = served
        self._classes[cls_name] = name
        if self._runs is not None:
            # Running: the RunBook shares ``_served``; it also finds runs by class.
            self._runs.served_as(served)

    @staticmethod
    def _stop_class(workflow: Workflow) -> type[StopEvent]:
        for info in type(workflow).steps().values():
            for cls in info.returns:
                if issubclass(cls, StopEvent):
                    return cls
        return StopEvent

    # Lifetime.

    @property
    def is_running(self) -> bool:
        return self._runs is not None and not self._closing

    def _book(self) -> RunBook:
        if self._runs is None:
            raise HTTPException(503, _NOT_RUNNING)
        return self._runs

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Requests served without a lifespan until now hold runs of their own:
        # they finish first (the runs stay recorded, and resume below).
        self._lifespan_open = True
        try:
            while self._on_demand is not None:
                await self._on_demand.closed.wait()
            async with self._hosting(resume=True, idle_timeout=self.idle_timeout):
                yield
        finally:
            self._lifespan_open = False

    @contextlib.asynccontextmanager
    async def _hosting(self, *, resume: bool, idle_timeout: float | None) -> AsyncIterator[None]:
        """The server's runtime and run book, open for the block: for the
        lifespan (``resume``: unfinished runs go on at once), or for requests
        served without one (a run resumes when a request is about it)."""
        self._closing = False
        # The runtime runs are recorded in, seen as a runtime and as a catalog.
        runtime: Runtime
        catalog: RunCatalog
        if self.runtime is not None:
            runtime = catalog = self.runtime
            for served in self._served.values():
                catalog.add_workflow(served.workflow)
        else:
            runtime = catalog = DurableRuntime(
                self.store, lease=self._lease, poll_interval=self._poll_interval
            )
        executing = self._decorated(runtime)
        async with executing, anyio.create_task_group() as watchers:
            self._runs = RunBook(
                catalog, executing, self._served, watchers, idle_timeout, on_demand=not resume
            )
            watchers.start_soon(
                self._runs.keep_store, self._probe_store, self.store_retry, name="anyflow store"
            )
            if resume:
                resumed = await self._runs.resume_unfinished()
                if resumed:
                    log.info("resumed %d unfinished run(s)", resumed)
            try:
                yield
            finally:
                self.close_streams()
                self._runs = None
                watchers.cancel_scope.cancel()
        # Leaving the runtime's block stops the runs still going; they stay
        # resumable and go on at the next start.

    def contextmanager(self) -> contextlib.AbstractAsyncContextManager[WorkflowServer]:
        """Run the server's lifespan in a block (it gives the server): its
        runs live and stop inside, and go on in the background meanwhile.

        What an application embedded in ``httpx.ASGITransport`` (which sends
        no lifespan events) takes to run as it would in an ASGI server::

            async with server.contextmanager():
                transport = httpx.ASGITransport(app=server.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                    ...

        Without it, the server serves each request by itself (see
        ``_session``).  On asyncio the block may be left from another task
        than the one that entered it (pytest-asyncio's fixtures do so).
        """
        return HeldOpen(self._lifespan_block)

    @contextlib.asynccontextmanager
    async def _lifespan_block(self) -> AsyncIterator[WorkflowServer]:
        async with self._lifespan(self.app):
            yield self

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        """A request served without a lifespan (``httpx.ASGITransport``).

        Runs must live in a scope, and a request is the only one there is: the
        first request opens the server's runtime in its own task, the requests
        that come while it is open share it, and it closes once they have all
        left and every run in it is quiet (nothing to do without outside
        input), which the first request waits for before it returns.  A run
        started with ``run-nowait`` is recorded and not run; a request about
        an unfinished run (its events, its status, an event sent to it, a
        cancel) resumes it, and it runs while requests are served.  A run that
        waits for input stays recorded: its deadlines (a ``wait_for_event``
        timeout, the run's ``timeout``) fire when a request resumes it.
        """
        session = self._on_demand
        while session is not None and session.closing:
            await session.closed.wait()
            session = self._on_demand
        if session is not None:
            session.users += 1
            try:
                yield
            finally:
                session.users -= 1
                if self._runs is not None:
                    self._runs.poke()
            return
        session = self._on_demand = Session()
        try:
            async with self._hosting(resume=False, idle_timeout=None):
                book = self._runs
                assert book is not None
                try:
                    yield
                finally:
                    session.users -= 1
                # The runs of every request of the session live in this task:
                # it leaves once nothing needs them.
                await book.until_quiet(lambda: session.users == 0)
                session.closing = True
        finally:
            self._on_demand = None
            session.closed.set()

    async def start(self) -> WorkflowServer:
        """For programs written for llama-agents-server, whose servers start
        with ``await server.start()``: checks that the store works and returns
        the server.  anyflow's server runs inside its lifespan (an ASGI
        server, ``serve()``, or ``async with server.contextmanager()``), and
        without one serves each request by itself (see ``_session``): there is
        nothing more to start.

        :raises StoreUnavailableError: if the store does not work.
        """
        await self._probe_store()
        return self

    def _decorated(self, runtime: Runtime) -> Runtime:
        """``runtime`` in the decorators of ``decorate_runtime``, checked."""
        if self.decorate_runtime is None:
            return runtime
        decorated = self.decorate_runtime(runtime)
        layer: object = decorated
        while layer is not runtime:
            if not isinstance(layer, RuntimeDecorator):
                raise TypeError(
                    "decorate_runtime must return runtime decorators around the runtime it is "
                    f"given (as TracingRuntime(rt)); it returned {decorated!r}, which does not "
                    "wrap it, so the server's runs would not be recorded"
                )
            layer = layer.inner
        return decorated

    # When the store fails.

    async def _probe_store(self) -> None:
        """Raise ``StoreUnavailableError`` if the store does not work now
        (a runtime given as ``runtime=`` watches its own records: a
        DBOSRuntime's database is DBOS's)."""
        if self.runtime is None:
            await self.store.ping()

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.store_retry)))}

    async def _store_unavailable(self, request: Request, exc: Exception) -> Response:
        """What the store could not record (or read) now is refused, not lost:
        a 503 the client may retry, and the server keeps serving."""
        if self._runs is not None:
            self._runs.store_failed(exc)
        return JSONResponse(
            {"detail": f"the store fails, nothing was recorded; retry later: {exc}"},
            status_code=503,
            headers=self._retry_after(),
        )

    @contextlib.contextmanager
    def _until_shutdown(self, timeout: float = math.inf) -> Iterator[anyio.CancelScope]:
        """A scope for a request's wait (an event stream's, a blocking run's),
        cancelled when the server shuts down (a wait must not hold it up) or
        after ``timeout`` seconds."""
        scope = anyio.CancelScope(deadline=anyio.current_time() + timeout)
        if self._closing:
            scope.cancel()
        self._streams.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._streams.discard(scope)

    def close_streams(self) -> None:
        """End every event stream and blocking wait (at shutdown)."""
        self._closing = True
        for scope in list(self._streams):
            scope.cancel()

    def stop(self) -> _Stopped:
        """Make ``serve()`` shut down: end the streams, finish the requests in
        flight, stop the runs (they stay resumable) and return.

        It acts at once; the incumbent's ``await server.stop()`` works too
        (it has nothing more to wait for: ``serve()`` returns once stopped)."""
        self.close_streams()
        if self._stop is not None:
            self._stop.set()
        return _Stopped()

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        handle_signals: bool = True,
        graceful_timeout: float = 2.0,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until ``stop()``, or SIGTERM/SIGINT with ``handle_signals``.

        Runs under asyncio and trio, on anyflow's own HTTP/1.1 server (h11).
        ``port=0`` picks a free port; ``task_status`` gets the URL (``await
        tg.start(server.serve, ...)``).  At shutdown, event streams and
        blocking runs end at once (their runs go on at the next start), idle
        connections close, and other requests get ``graceful_timeout``.
        """
        from ._serve import serve

        # A store that cannot be opened fails here, before the server says it
        # serves (a database down, a read-only file).
        await self._probe_store()
        self.hosts.listen_on(host)
        self._stop = anyio.Event()
        try:
            await serve(
                self,
                host,
                port,
                stop=self._stop,
                handle_signals=handle_signals,
                graceful_timeout=graceful_timeout,
                task_status=task_status,
            )
        finally:
            self._stop = None

    # Documents.

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi(self))

    async def _inspector(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


class _Stopped:
    """What ``stop()`` returns: it may be awaited, and gives None."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return _nothing().__await__()


async def _nothing() -> None:
    return None


_NOT_RUNNING = (
    "the server is not running: its runs live in the ASGI application's lifespan, "
    "which server.serve() or an ASGI server starts; embedded in httpx.ASGITransport "
    "(which sends no lifespan events), enter it first: "
    "async with server.contextmanager(): ... "
    "(the same as async with server.app.router.lifespan_context(server.app))"
)
