"""``DBOSRuntime``: runs recorded in DBOS Transact, resumable from any process.

A run is one DBOS workflow (see ``_bridge``).  What DBOS records of it is the
run's tick log: one ``anyflow.record`` step per batch of ticks the reducer
applied, written before any command of that batch runs, carrying the batch's
ticks, the events it published and, when it changed, the run's state.  Since
the reducer is pure, that log is the run: a process that resumes it asks DBOS
for the recorded steps in order, folds their ticks, and goes on.  Step code
never talks to DBOS, so no step call needs an order of its own, and a chain
of n steps costs n recorded operations.

Ticks from other processes (events, cancellation) arrive as DBOS messages on
topic ``anyflow.tick``.  A run takes them with ``DBOS.recv``, which records
what it received; so that a replay knows where those receives were, each
round of them is announced by a record step first.  A run learns that it has
mail from a cheap read of DBOS's notifications table every ``poll_interval``
(or at once, when the sender is in the same process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from dbos import DBOS, SetWorkflowID
from dbos._error import DBOSWorkflowConflictIDError as _ConflictError
from dbos._error import DBOSWorkflowIDInUseError as _InUseError

from ..durable import RunRecord, StoredEvent
from ..durable.journal import (
    check_fingerprint,
    decode_outcome,
    decode_record,
    default_start,
    encode_outcome,
    encode_record,
    fingerprint,
    load_state,
    replay_ticks,
)
from ..errors import (
    ContextSerdeError,
    DurabilityError,
    RunLockedError,
    WorkflowRuntimeError,
)
from ..events import Event, InternalEvent
from ..runtime import (
    BasicRuntime,
    ExternalRunAdapterDecorator,
    InternalRunAdapterDecorator,
    Recovery,
    RuntimeDecorator,
    terminal_event,
)
from ..runtime.vocabulary import Publish, is_external
from ..serialization import (
    decode_event,
    decode_tick,
    encode_event,
    encode_tick,
    encode_value,
    type_name,
)
from . import _bridge

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterable, Mapping, Sequence
    from types import TracebackType

    from ..context import StateStore
    from ..durable import RunCatalog
    from ..handler import WorkflowHandler
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..runtime.vocabulary import Command, Outcome, Tick
    from ..workflow import Workflow

__all__ = ["DBOSRuntime"]

log = logging.getLogger("anyflow.dbos")

_APP_NAME = re.compile(r"[a-z0-9_-]{3,256}")
_FINISHED = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
_WAITING = frozenset({"PENDING", "ENQUEUED", "DELAYED"})


class _Run:
    """What the two adapters of one run share."""

    __slots__ = (
        "committed_sent",
        "context",
        "done",
        "ended",
        "fresh",
        "handle",
        "internal",
        "mail",
        "next_event",
        "pending",
        "prelogged",
        "received",
        "recorded",
        "remote",
        "run_id",
        "runtime",
        "sending",
        "sent",
        "state_store",
        "state_version",
        "wakeup",
        "workflow",
    )

    def __init__(self, runtime: DBOSRuntime, run_id: str, remote: bool) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.remote = remote
        """Followed, not executed here: the run executes in some process of
        the application (maybe this one) and is read from its record."""
        self.context: Any = None
        self.done: asyncio.Future[str] | None = None
        """Resolved with the run's result when it ends here; the run's DBOS
        workflow is waiting for it."""
        self.fresh = False
        self.handle: Any = None
        """DBOS's handle of the run's workflow, when it was started here."""
        self.ended = False
        self.recorded = False
        self.internal: InternalRunAdapter | None = None
        self.mail = False
        """A message waits for this run (a hint: ``recv`` then takes it)."""
        self.received: deque[Tick] = deque()
        """Ticks received and not yet recorded in a batch."""
        self.next_event = 0
        self.pending: list[Any] = []
        self.prelogged: deque[Any] = deque()
        self.sent = 0
        self.committed_sent = 0
        self.sending = 0
        self.state_store: StateStore[Any] | None = None
        self.state_version = 0
        self.wakeup: anyio.Event | None = None
        self.workflow: Any = None

    def notify(self) -> None:
        if self.wakeup is not None:
            self.wakeup.set()
            self.wakeup = None

    def next_change(self) -> anyio.Event:
        if self.wakeup is None:
            self.wakeup = anyio.Event()
        return self.wakeup

    def encode_event(self, event: Any) -> Any:
        try:
            return encode_value(encode_event(event), "$")
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record the event {type(event).__name__}: "
                f"{exc} (a run's events must be JSON-safe)"
            ) from exc


def _decode_batch(text: str, run_id: str, seq: int) -> dict[str, Any]:
    data = decode_record(text, run_id, "batch", seq)
    if not isinstance(data, dict):
        raise DurabilityError(f"batch record {seq} of run {run_id!r} is not a batch")
    return data


def _decode_events(data: Iterable[Any], run_id: str, seq: int) -> list[Event]:
    try:
        return [decode_event(item, f"$.e[{i}]") for i, item in enumerate(data)]
    except ContextSerdeError as exc:
        raise DurabilityError(f"batch record {seq} of run {run_id!r}: {exc}") from exc


def _decode_ticks(data: Iterable[Any], run_id: str, seq: int) -> list[Tick]:
    try:
        return [decode_tick(item, f"$.t[{i}]") for i, item in enumerate(data)]
    except ContextSerdeError as exc:
        raise DurabilityError(f"batch record {seq} of run {run_id!r}: {exc}") from exc


class _Internal(InternalRunAdapterDecorator):
    __slots__ = ("_run",)

    def __init__(self, inner: InternalRunAdapter, run: _Run) -> None:
        super().__init__(inner)
        self._run = run
        run.internal = inner

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        run = self._run
        run.state_store = store
        try:
            return await run.runtime._recover(run, self.inner, workflow, start_event)
        except BaseException:
            if run.done is not None and not run.done.done():
                run.done.cancel()
            raise

    async def receive_ticks(self) -> list[Tick]:
        run = self._run
        ticks = await self.inner.receive_ticks()
        if run.mail and not run.remote:
            run.mail = False
            await self._receive_mail()
        if run.received:
            ticks = [*run.received, *ticks]
        return ticks

    async def _receive_mail(self) -> None:
        """Take every message waiting for the run, announced by a record step
        so that a replay calls ``recv`` at the same places."""
        run = self._run
        await _record(run, encode_record({"recv": True}))
        while (message := await DBOS.recv_async(_bridge.TOPIC, 0)) is not None:
            run.received.append(_decode_message(message, run.run_id))

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self._run.runtime._commit(self._run, ticks, commands)
        await self.inner.on_ticks(ticks, commands)

    def publish(self, event: Any) -> None:
        run = self._run
        if run.prelogged and run.prelogged[0] is event:
            run.prelogged.popleft()
        elif not isinstance(event, InternalEvent) and not run.ended and not run.remote:
            run.pending.append(run.encode_event(event))
        self.inner.publish(event)

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        while (delay := deadline - time.time()) > 0:  # noqa: ASYNC110 - the wall clock may jump
            await anyio.sleep(delay)

    async def on_end(self, outcome: Outcome, final: bool) -> None:
        run = self._run
        done = run.done
        if done is None or done.done():
            return
        if final:
            events, run.pending = run.pending, []
            done.set_result(encode_record({"o": encode_outcome(outcome), "e": events}))
            await run.runtime._until_recorded(run)
        else:
            done.cancel()  # the DBOS workflow stays pending: resumable

    def finish(self, outcome: Outcome) -> None:
        run = self._run
        run.ended = True
        run.prelogged.clear()
        if run.runtime._active.get(run.run_id) is run:
            del run.runtime._active[run.run_id]
        run.notify()
        self.inner.finish(outcome)


class _External(ExternalRunAdapterDecorator):
    __slots__ = ("_run",)

    def __init__(self, inner: ExternalRunAdapter, run: _Run) -> None:
        super().__init__(inner)
        self._run = run

    def send_tick(self, tick: Tick) -> None:
        run = self._run
        if not run.remote:
            self.inner.send_tick(tick)
            if is_external(tick):
                run.sent += 1
            return
        if self.inner.outcome is not None:
            self.inner.send_tick(tick)  # raises: the run has finished
        run.sending += 1
        run.runtime.spawn(lambda: run.runtime._send(run, tick), name="anyflow dbos send")

    async def wait_accepted(self) -> None:
        run = self._run
        while not run.ended and (
            run.sending if run.remote else run.context is None or run.committed_sent < run.sent
        ):
            await run.next_change().wait()
        await anyio.lowlevel.checkpoint()


def _decode_message(message: Any, run_id: str) -> Tick:
    try:
        return decode_tick(json.loads(message), "$")
    except (ValueError, TypeError, ContextSerdeError) as exc:
        raise DurabilityError(
            f"run {run_id!r} received a message that is not a tick: {exc}"
        ) from exc


async def _record(run: _Run, payload: str | None) -> bool:
    """Record one step of the run's DBOS workflow; whether it executed (False:
    DBOS had it recorded and returned that record)."""
    executed: list[bool] = []
    try:
        await _bridge.record(executed, payload)
    except _ConflictError:
        # from None: DBOS's conflict error says less than this message
        raise DurabilityError(
            f"run {run.run_id!r} was taken over by another process: it goes on there; "
            "follow it with runtime.attach()"
        ) from None
    return bool(executed)


class DBOSRuntime(RuntimeDecorator):
    """Hosts runs recorded in DBOS Transact: a run survives any process dying,
    and any process of the application can resume it, send it events and read
    its stream.

    ``async with DBOSRuntime(name="app", database_url="sqlite:///app.db") as rt:``
    launches DBOS (or, with no ``database_url``, uses the DBOS instance the
    application configured and launched).  ``wf.run(run_id="order-42",
    runtime=rt, **fields)`` starts the run ``order-42``; the same call for an
    unfinished run resumes it here, taking it over from the process that had
    it (DBOS fences that one off at its next record), and for a finished run
    returns its outcome.  ``rt.attach(wf, run_id)`` follows a run without
    executing it.  Leaving the block stops the runs executing here and leaves
    them resumable.

    asyncio only: DBOS's async API needs an asyncio event loop.  On trio, use
    ``anyflow.durable.DurableRuntime``.

    :param workflows: the workflows this process can execute when DBOS hands
        it a run it did not start (a run recovered at launch, or taken over).
        Every workflow that ran here is added; one that is missing is built
        from its class with no arguments.
    :param executor_id: this process's DBOS executor id; a new one by default.
        A process started with the id of a dead one recovers that one's
        unfinished runs at launch.
    :param application_version: pinned, so that a new release of the code
        still recovers the runs of the old one (anyflow checks that the
        workflow's steps did not change in a way its record cannot follow).
    :param poll_interval: how often a run looks for messages from other
        processes, and a follower for new records.
    :param dbos_config: more of DBOS's configuration (``log_level``, ...),
        when the runtime launches DBOS.
    """

    def __init__(
        self,
        name: str = "anyflow",
        database_url: str | None = None,
        *,
        workflows: Iterable[Workflow] = (),
        executor_id: str | None = None,
        application_version: str = "anyflow-1",
        poll_interval: float = 0.1,
        dbos_config: Mapping[str, Any] | None = None,
        inner: Runtime | None = None,
    ) -> None:
        _require_asyncio()
        super().__init__(inner if inner is not None else BasicRuntime())
        if poll_interval <= 0:
            raise ValueError("poll_interval is seconds > 0")
        if not _APP_NAME.fullmatch(name):
            raise ValueError(
                f"DBOS application name {name!r}: use 3 to 256 lowercase letters, digits, "
                "dashes and underscores"
            )
        self.name = name
        self.database_url = database_url
        self.executor_id = executor_id or f"anyflow-{uuid.uuid4().hex[:12]}"
        self.application_version = application_version
        self.poll_interval = poll_interval
        self.dbos_config = dict(dbos_config or {})
        self._workflows: dict[str, Workflow] = {}
        for workflow in workflows:
            self._workflows[type_name(type(workflow))] = workflow
        self._active: dict[str, _Run] = {}
        self._starts: dict[str, tuple[asyncio.Future[tuple[Any, asyncio.Future[str]]], bool]] = {}
        self._adoptions: dict[str, tuple[Any, asyncio.Future[str], str]] = {}
        self._following: set[str] = set()
        self._launched = False
        self._entered = False
        self.loop: asyncio.AbstractEventLoop

    @property
    def keeps_runs(self) -> bool:
        return True

    # Entering and leaving.

    async def __aenter__(self) -> DBOSRuntime:
        import asyncio

        _require_asyncio()
        if _bridge.host() is not None:
            raise RuntimeError(
                "another DBOSRuntime is running in this process: DBOS is one per process, "
                "so is DBOSRuntime; share that one"
            )
        self.loop = asyncio.get_running_loop()
        _bridge.set_host(self)
        try:
            if self.database_url is not None:
                config: Any = {
                    "enable_otlp": False,
                    **self.dbos_config,
                    "name": self.name,
                    "system_database_url": self.database_url,
                    "executor_id": self.executor_id,
                    "application_version": self.application_version,
                }
                DBOS(config=config)
                self._launched = True
                path = _sqlite_path(self.database_url)
                if path is not None:
                    await anyio.to_thread.run_sync(_use_wal, path)
                try:
                    await anyio.to_thread.run_sync(DBOS.launch)
                except Exception as exc:
                    raise DurabilityError(
                        f"DBOS could not open its system database at "
                        f"{_redacted(self.database_url)}: {exc}. Check that the database "
                        "server runs and the URL is right (sqlite:///path/app.db or "
                        "postgresql://user@host:5432/dbname)"
                    ) from exc
            elif not _dbos_launched():
                raise RuntimeError(
                    "DBOSRuntime without database_url uses the application's DBOS, and "
                    "DBOS is not launched: call DBOS(config=...) and DBOS.launch() first, "
                    "or pass database_url= and let the runtime launch it"
                )
            else:
                self.executor_id = _dbos_executor_id()
            await self.inner.__aenter__()
        except BaseException:
            _bridge.set_host(None)
            if self._launched:
                self._launched = False
                await anyio.to_thread.run_sync(DBOS.destroy)
            raise
        self._entered = True
        logging.getLogger("dbos").addFilter(_QUIET)
        self.inner.spawn(self._watch_mail, name="anyflow dbos mail")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self.inner.__aexit__(exc_type, exc, tb)
        finally:
            self._entered = False
            _bridge.set_host(None)
            for waiter, _ in self._starts.values():
                waiter.cancel()
            for _, done, _ in self._adoptions.values():
                done.cancel()
            self._starts.clear()
            self._adoptions.clear()
            if self._launched:
                self._launched = False
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(DBOS.destroy)
            logging.getLogger("dbos").removeFilter(_QUIET)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        if not self._entered:
            raise RuntimeError(
                "this DBOSRuntime is not running: start runs inside "
                "`async with DBOSRuntime(...) as runtime:`"
            )
        remote = run_id in self._following
        self._following.discard(run_id)
        if not remote and run_id in self._active:
            raise RunLockedError(
                f"run {run_id!r} is already executing in this runtime: use the handler "
                "that started it, or runtime.attach() to follow it"
            )
        internal, external = self.inner.open_run(run_id)
        run = _Run(self, run_id, remote)
        if not remote:
            self._active[run_id] = run
        return _Internal(internal, run), _External(external, run)

    def add_workflow(self, workflow: Workflow) -> None:
        """Make ``workflow`` one this process can execute when DBOS hands it a
        run it did not start (as ``workflows=`` does)."""
        self._workflows.setdefault(type_name(type(workflow)), workflow)

    def attach(self, workflow: Workflow, run_id: str) -> WorkflowHandler:
        """A handler that follows the run ``run_id`` of ``workflow`` (executing
        in any process of the application, or finished) without executing it:
        its events stream from the run's record, events sent reach the run as
        DBOS messages, and awaiting it gives the run's result."""
        self._following.add(run_id)
        try:
            return workflow.run(run_id=run_id, runtime=self)
        finally:
            self._following.discard(run_id)

    # The run's DBOS workflow hands itself over here (see _bridge.run).

    async def execute(self, run_id: str, workflow: str, start: str, context: Any) -> str:
        import asyncio

        done: asyncio.Future[str] = self.loop.create_future()
        started = self._starts.pop(run_id, None)
        if started is not None and not started[0].done():
            started[0].set_result((context, done))
        else:
            instance = self._workflow_named(workflow)
            if instance is None:
                raise asyncio.CancelledError  # leave the run pending
            self._adoptions[run_id] = (context, done, start)
            try:
                instance.run(run_id=run_id, runtime=self)
            except BaseException:
                self._adoptions.pop(run_id, None)
                raise
        return await done

    def _workflow_named(self, name: str) -> Workflow | None:
        found = self._workflows.get(name)
        if found is not None:
            return found
        from ..targets import TargetError, load_workflow

        try:
            found = load_workflow(name)
        except TargetError as exc:
            log.error(
                "run of %s left pending: this process cannot build the workflow (%s); "
                "pass it to DBOSRuntime(workflows=[...])",
                name,
                exc,
            )
            return None
        self._workflows[name] = found
        return found

    # Recovery, in the run's driver task.

    async def _recover(
        self,
        run: _Run,
        inner: InternalRunAdapter,
        workflow: Workflow,
        start_event: Event | None,
    ) -> Recovery | None:
        import asyncio

        # This task may have been started from inside another run's step: its
        # DBOS calls belong to no workflow until this run's is handed over.
        _bridge.use_context(None)
        name = type_name(type(workflow))
        self._workflows.setdefault(name, workflow)
        run.workflow = workflow
        adopted = self._adoptions.pop(run.run_id, None)
        if adopted is not None:
            run.context, run.done, start = adopted
            return await self._replay(run, inner, workflow, start)
        status = await DBOS.get_workflow_status_async(run.run_id)
        if run.remote:
            while status is None and run.run_id in self._active:
                # Started here a moment ago, not recorded yet.
                await anyio.sleep(self.poll_interval)
                status = await DBOS.get_workflow_status_async(run.run_id)
            if status is None:
                raise WorkflowRuntimeError(
                    f"no run {run.run_id!r} is recorded: start it with wf.run(run_id=...)"
                )
            self._check_status(run, status, name)
            return await self._follow(run, inner)
        if status is None:
            if start_event is None:
                start_event = default_start(workflow, run.run_id)
            try:
                start = encode_record(encode_value(encode_event(start_event), "$"))
            except ContextSerdeError as exc:
                raise DurabilityError(
                    f"run {run.run_id!r} cannot record its start event: {exc}"
                ) from exc
            waiter: asyncio.Future[tuple[Any, asyncio.Future[str]]] = self.loop.create_future()
            self._starts[run.run_id] = (waiter, True)
            try:
                with SetWorkflowID(run.run_id, workflow_id_reuse_policy="reject"):
                    run.handle = await DBOS.start_workflow_async(
                        _bridge.run, run.run_id, name, start
                    )
            except _InUseError:
                self._starts.pop(run.run_id, None)
                status = await DBOS.get_workflow_status_async(run.run_id)
            else:
                run.context, run.done = await waiter
                run.fresh = True
                run.notify()
                _bridge.use_context(run.context)
                return Recovery(start_event=start_event)
        assert status is not None
        self._check_status(run, status, name)
        if status.status in _FINISHED:
            return await self._follow(run, inner)
        # Unfinished: take it over.  DBOS re-enqueues it; the process that
        # dequeues it (this one, most often) executes it.
        waiter = self.loop.create_future()
        self._starts[run.run_id] = (waiter, False)
        try:
            await DBOS.resume_workflow_async(run.run_id)
            while True:
                with anyio.move_on_after(self.poll_interval):
                    run.context, run.done = await asyncio.shield(waiter)
                    break
                status = await DBOS.get_workflow_status_async(run.run_id)
                if status is not None and (
                    status.status in _FINISHED
                    or (status.status == "PENDING" and status.executor_id != self.executor_id)
                ):
                    run.remote = True  # another process dequeued it first
                    self._active.pop(run.run_id, None)
                    return await self._follow(run, inner)
        finally:
            if self._starts.get(run.run_id, (None,))[0] is waiter:
                del self._starts[run.run_id]
        assert status is not None
        start = status.input["args"][2] if status.input else ""
        return await self._replay(run, inner, workflow, start)

    def _check_status(self, run: _Run, status: Any, name: str) -> None:
        if status.name != _bridge.RUN:
            raise DurabilityError(
                f"{run.run_id!r} is the id of a DBOS workflow that is not an anyflow run "
                f"({status.name}): use another run id"
            )
        recorded = status.input["args"][1] if status.input else None
        if recorded != name:
            raise DurabilityError(
                f"run {run.run_id!r} is a run of {recorded}, not of {name}: resume or "
                "attach it with that workflow, or use another run id"
            )

    async def _replay(
        self, run: _Run, inner: InternalRunAdapter, workflow: Workflow, start: str
    ) -> Recovery | None:
        """Fold the run's recorded batches, in its own DBOS workflow context:
        DBOS returns each recorded step in order, until the first step it has
        not recorded, which executes (and records nothing of the run)."""
        _bridge.use_context(run.context)
        run.notify()
        run_id = run.run_id
        ticks: list[Tick] = []
        events: list[Event] = []
        received: deque[Tick] = deque()
        state_data: Any = None
        seq = 0
        while True:
            executed: list[bool] = []
            text = await _bridge.record(executed, None)
            if executed:
                break
            if text is None:
                continue
            batch = _decode_batch(text, run_id, seq)
            if batch.get("recv"):
                while (message := await DBOS.recv_async(_bridge.TOPIC, 0)) is not None:
                    received.append(_decode_message(message, run_id))
                continue
            if "f" in batch:
                check_fingerprint(run_id, workflow, batch["f"])
            for _ in range(batch.get("m", 0)):
                if not received:
                    raise DurabilityError(
                        f"batch record {seq} of run {run_id!r} names a message that was "
                        "never received: the record is damaged"
                    )
                received.popleft()
            ticks.extend(_decode_ticks(batch.get("t", ()), run_id, seq))
            events.extend(_decode_events(batch.get("e", ()), run_id, seq))
            if "s" in batch:
                state_data = batch["s"]
            seq += 1
        run.recorded = seq > 0
        run.received = received
        run.next_event = len(events)
        if not ticks:
            data = decode_record(start, run_id, "start", 0)
            try:
                return Recovery(start_event=decode_event(data, "$.start"))
            except ContextSerdeError as exc:
                raise DurabilityError(f"the start event of run {run_id!r}: {exc}") from exc
        state = replay_ticks(run_id, workflow._spec, ticks)
        if state.outcome is not None:
            # The last batch was recorded and the end was not: end it now.
            terminal = terminal_event(state.outcome)
            for event in (*events, terminal):
                inner.publish(event)
            assert run.done is not None
            run.done.set_result(
                encode_record(
                    {"o": encode_outcome(state.outcome), "e": [run.encode_event(terminal)]}
                )
            )
            await self._until_recorded(run)
            return Recovery(outcome=state.outcome)
        store = run.state_store
        if state_data is not None and store is not None:
            load_state(store, state_data, run_id)
        if store is not None:
            run.state_version = store.version
        for event in events:
            inner.publish(event)
        return Recovery(state=state)

    async def _follow(self, run: _Run, inner: InternalRunAdapter) -> Recovery:
        """Publish the run's recorded events as they are recorded, until it
        ends; its outcome."""
        run.remote = True
        reader = _RecordReader(self, run.run_id)
        while True:
            for event in await reader.read():
                inner.publish(event.event)
            if reader.outcome is not None:
                return Recovery(outcome=reader.outcome)
            await reader.wait()

    # Reading the record (the same questions DurableRuntime answers).

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run."""
        status = await DBOS.get_workflow_status_async(run_id)
        if status is None or status.name != _bridge.RUN:
            return None
        return _run_record(status)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first (``workflow`` is ``module:qualname``)."""
        found = await DBOS.list_workflows_async(name=_bridge.RUN, load_output=True)
        records = [_run_record(s) for s in found]
        return [
            r
            for r in records
            if (workflow is None or r.workflow == workflow)
            and (status is None or r.status == status)
        ]

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The run's recorded events with a sequence number above ``after``."""
        events = [e for e in await _RecordReader(self, run_id).read() if e.seq > after]
        return events if limit is None else events[:limit]

    def events(self, run_id: str, after: int = -1) -> _EventStream:
        """The run's recorded events above ``after``, following the run until
        its last event, wherever it executes.

        :raises DurabilityError: if there is no such run.
        """
        return _EventStream(self, run_id, after)

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run's record."""
        await DBOS.delete_workflow_async(run_id)

    @property
    def resumes_recorded_runs(self) -> bool:
        """False: DBOS decides which process executes a recorded run (its own,
        after a restart with the same executor id); others follow it."""
        return False

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        """A handler on the recorded unfinished run ``run_id``: one that follows
        it (``attach``), wherever it executes."""
        return self.attach(workflow, run_id)

    # While a run goes on.

    async def _commit(self, run: _Run, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        try:
            batch: dict[str, Any] = {"t": [encode_tick(tick) for tick in ticks]}
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {run.run_id!r} cannot record a tick: {exc} (a run's events must be JSON-safe)"
            ) from exc
        events = run.pending
        for command in commands:
            if type(command) is Publish and not isinstance(command.event, InternalEvent):
                events.append(run.encode_event(command.event))
                run.prelogged.append(command.event)
        if events:
            batch["e"] = events
        received: list[Tick] = []
        if run.received:
            # The messages among these ticks (the driver may reorder a batch):
            # a replay takes as many from what it receives again.
            waiting = {id(tick) for tick in run.received}
            received = [tick for tick in ticks if id(tick) in waiting]
            batch["m"] = len(received)
        if not run.recorded:
            batch["f"] = fingerprint(run.workflow)
        store = run.state_store
        version = run.state_version
        if store is not None and store.version != run.state_version:
            try:
                batch["s"] = encode_value(store.to_dict(), "$.state")
            except ContextSerdeError as exc:
                raise DurabilityError(
                    f"run {run.run_id!r} cannot record its state: {exc} (a run's state "
                    "must be JSON-safe)"
                ) from exc
            version = store.version
        try:
            text = encode_record(batch)
        except ContextSerdeError as exc:
            raise DurabilityError(f"run {run.run_id!r} cannot record a batch: {exc}") from exc
        run.pending = []
        await _record(run, text)
        run.recorded = True
        run.state_version = version
        if received:
            taken = {id(tick) for tick in received}
            run.received = deque(t for t in run.received if id(t) not in taken)
        run.committed_sent += sum(1 for tick in ticks if is_external(tick))
        run.notify()

    async def _until_recorded(self, run: _Run) -> None:
        """Wait until DBOS has recorded the end of ``run``'s workflow, so that
        when its handler returns every process sees the run finished (and a
        process that exits then leaves nothing pending)."""
        _bridge.use_context(None)  # what follows is not part of the run's record
        if run.handle is not None:
            # The DBOS task runs in this loop: it records the result, then ends.
            with contextlib.suppress(Exception):
                await run.handle.get_result()
            return
        # On DBOS's background loop: look until the end is recorded.
        with anyio.move_on_after(10 * self.poll_interval + 5):
            while True:
                status = await DBOS.get_workflow_status_async(run.run_id)
                if status is None or status.status in _FINISHED:
                    return
                await anyio.sleep(0.005)
        log.warning("run %r ended, and DBOS has not recorded its end yet", run.run_id)

    async def _send(self, run: _Run, tick: Tick) -> None:
        _bridge.use_context(None)  # maybe spawned from a step: not part of its run's record
        try:
            await DBOS.send_async(run.run_id, json.dumps(encode_tick(tick)), _bridge.TOPIC)
            local = self._active.get(run.run_id)
            if local is not None and local.internal is not None:
                local.mail = True
                local.internal.interrupt()
        except Exception:
            log.exception("run %r: a tick could not be sent", run.run_id)
        finally:
            run.sending -= 1
            run.notify()

    async def _watch_mail(self) -> None:
        while True:
            await anyio.sleep(self.poll_interval)
            runs = [r for r in self._active.values() if r.internal is not None and not r.remote]
            if not runs:
                continue
            waiting = await anyio.to_thread.run_sync(_bridge.pending_messages)
            for r in runs:
                if r.run_id in waiting and r.internal is not None:
                    r.mail = True
                    r.internal.interrupt()


class _QuietCancellation(logging.Filter):
    """Drops DBOS's warning that a workflow task was cancelled: a runtime
    leaving its block cancels the DBOS workflows of its unfinished runs on
    purpose (that is what leaves them pending, to be resumed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Asyncio task cancelled for workflow")


_QUIET = _QuietCancellation()


class _RecordReader:
    """Reads a run's events from its DBOS record, from where it left off: the
    events of each recorded batch in order, then those of the run's result."""

    __slots__ = ("_offset", "_runtime", "next_seq", "outcome", "run_id", "status")

    def __init__(self, runtime: DBOSRuntime, run_id: str) -> None:
        self._runtime = runtime
        self.run_id = run_id
        self._offset = 0
        self.next_seq = 0
        self.status: Any = None
        """DBOS's status of the run at the last read (None: no such run)."""
        self.outcome: Outcome | None = None
        """Set once the run's end has been read."""

    async def read(self) -> list[StoredEvent]:
        """The events recorded since the last read."""
        if self.outcome is not None:
            return []
        run_id = self.run_id
        # The status first: a finished run has all its steps recorded.
        self.status = status = await DBOS.get_workflow_status_async(run_id)
        steps = await DBOS.list_workflow_steps_async(run_id, offset=self._offset)
        found: list[StoredEvent] = []
        for step in steps:
            self._offset += 1
            text = step["output"]
            if step["function_name"] != _bridge.RECORD or text is None:
                continue
            batch = _decode_batch(text, run_id, self._offset)
            found.extend(self._number(_decode_events(batch.get("e", ()), run_id, self._offset)))
        if status is not None and status.status in _FINISHED:
            if status.status != "SUCCESS" or not isinstance(status.output, str):
                raise DurabilityError(
                    f"the DBOS workflow of run {run_id!r} ended as {status.status} without "
                    "an outcome: it was cancelled or failed outside anyflow"
                )
            final = decode_record(status.output, run_id, "outcome", 0)
            found.extend(self._number(_decode_events(final.get("e", ()), run_id, self._offset)))
            self.outcome = decode_outcome(encode_record(final["o"]), run_id)
        return found

    def _number(self, events: list[Event]) -> list[StoredEvent]:
        numbered = [StoredEvent(self.next_seq + i, event) for i, event in enumerate(events)]
        self.next_seq += len(events)
        return numbered

    async def wait(self) -> None:
        """Until there may be more to read: the next record of a run executing
        in this process, else ``poll_interval``."""
        local = self._runtime._active.get(self.run_id)
        if local is not None and not local.ended:
            with anyio.move_on_after(self._runtime.poll_interval):
                await local.next_change().wait()
        else:
            await anyio.sleep(self._runtime.poll_interval)


class _EventStream:
    """``DBOSRuntime.events()``: a plain async iterator, so a consumer may
    break out of its loop without leaving a generator to finalize."""

    __slots__ = ("_after", "_buffer", "_reader")

    def __init__(self, runtime: DBOSRuntime, run_id: str, after: int) -> None:
        self._reader = _RecordReader(runtime, run_id)
        self._after = after
        self._buffer: deque[StoredEvent] = deque()

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> StoredEvent:
        reader = self._reader
        while not self._buffer:
            if reader.outcome is not None:
                raise StopAsyncIteration
            self._buffer.extend(e for e in await reader.read() if e.seq > self._after)
            if reader.status is None:
                raise DurabilityError(f"no run {reader.run_id!r} is recorded")
            if not self._buffer and reader.outcome is None:
                await reader.wait()
        return self._buffer.popleft()


def _run_status(status: Any) -> str:
    """An anyflow run status (``RunRecord.status``) from DBOS's."""
    if status.status in _WAITING:
        return "running"
    if status.status == "SUCCESS" and isinstance(status.output, str):
        try:
            return str(json.loads(status.output.partition(":")[2])["o"]["status"])
        except (ValueError, KeyError, TypeError):
            return "failed"
    return "cancelled" if status.status == "CANCELLED" else "failed"


def _run_record(status: Any) -> RunRecord:
    workflow = status.input["args"][1] if status.input else ""
    created = (status.created_at or 0) / 1000
    return RunRecord.from_row(
        status.workflow_id,
        str(workflow),
        _run_status(status),
        created,
        (status.updated_at or status.created_at or 0) / 1000,
    )


def _sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for another database, or memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _use_wal(path: str) -> None:
    """Put the SQLite file in write-ahead-log mode before DBOS opens it.

    DBOS leaves a new file in rollback-journal mode, where every commit
    creates, syncs and deletes a journal file: a recorded step then costs
    about 3 ms instead of 2 (``python -m benchmarks dbos``).  The mode stays
    with the file; readers in other processes keep working, as WAL allows.
    """
    import sqlite3

    with contextlib.suppress(sqlite3.Error):  # DBOS reports a bad path itself
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()


def _redacted(url: str) -> str:
    """``url`` without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{place}"


def _dbos_launched() -> bool:
    from dbos import _dbos

    instance = _dbos._dbos_global_instance
    return instance is not None and bool(instance._launched)


def _dbos_executor_id() -> str:
    from dbos._utils import GlobalParams

    return str(GlobalParams.executor_id)


def _require_asyncio() -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    if library != "asyncio":
        raise RuntimeError(
            f"DBOSRuntime runs on asyncio only, and this is {library}: DBOS's async API "
            "needs an asyncio event loop (on trio, every DBOS *_async call fails with "
            "'no running event loop'). On trio, use anyflow.durable.DurableRuntime, which "
            "keeps runs in SQLite or PostgreSQL with the same resume semantics"
        )


if TYPE_CHECKING:

    def _is_a_run_catalog(runtime: DBOSRuntime) -> RunCatalog:
        return runtime  # mypy checks that DBOSRuntime satisfies RunCatalog
