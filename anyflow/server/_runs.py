"""The server's runs: those it executes now, and those its store has recorded.

A handler id *is* a durable run id, so everything the protocol shows about a
handler (status, timestamps, result, events with their sequence numbers) is
read from the durable store, and a restart loses nothing: unfinished runs are
resumed from their journals, finished ones keep their outcome and stream.
The book adds what the store cannot know: which registered name a workflow
class is served under, and the runs started but not yet recorded.  How a
handler looks on the wire is ``_handler_views``'s; the batches a stream reads
when the catalog has no live feed are ``_event_batches``'s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ..durable import DurableRuntime, LiveRunCatalog
from ..errors import (
    ContextSerdeError,
    DurabilityError,
    RunLockedError,
    StoreUnavailableError,
    WorkflowRuntimeError,
)
from ..events import StartEvent, WorkflowCancelledEvent
from ..handler import WorkflowHandler
from ..runtime.vocabulary import RunStatus
from ..serialization import type_name
from ..workflow import Workflow
from ._envelope import BadEvent, EventRegistry
from ._event_batches import OneByOne, Replay
from ._handler_views import HandlerView, TerminalEvents, describe, protocol_status, unrecorded, utc
from ._idle import ReleasableRuntime
from ._refusals import Conflict, Finished, NotDelivered, NotFound

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup

    from ..durable import LiveEventFeed, RunCatalog, RunRecord
    from ..runtime import Runtime

__all__ = ["RunBook", "Served"]

log = logging.getLogger("anyflow.server")


@attrs.frozen
class Served:
    """A workflow the server runs, under the name clients use."""

    name: str
    workflow: Workflow
    registry: EventRegistry


@attrs.define
class _Live:
    """A run this server executes now (or has parked, idle, out of memory)."""

    served: Served
    handler: WorkflowHandler
    started_at: datetime
    ended: anyio.Event = attrs.field(factory=anyio.Event)
    """Set when the run has finished (not when it is parked)."""
    stopped: anyio.Event = attrs.field(factory=anyio.Event)
    """Set when nothing of this execution runs any more (finished or parked)."""
    abandoned: bool = False
    """Its start was refused (not recorded): never resumed."""
    new: bool = False
    """Started as a new run, and not recorded yet: a ``RunLockedError`` means
    its id was taken, which ``RunBook.start`` answers."""


class RunBook:
    """Starts, resumes, feeds and cancels the server's runs, and describes them."""

    def __init__(
        self,
        durable: RunCatalog,
        runtime: Runtime,
        served: dict[str, Served],
        task_group: TaskGroup,
        idle_timeout: float | None = None,
        *,
        on_demand: bool = False,
    ) -> None:
        self.durable = durable
        """What the server reads recorded runs from (the runtime, seen as a catalog)."""
        self._live_catalog = durable if isinstance(durable, LiveRunCatalog) else None
        """The same catalog where it follows runs live (``DurableRuntime``)."""
        self.on_demand = on_demand
        """Runs execute only while requests about them are served (no lifespan):
        a run started without waiting is recorded and not run, and a request
        about an unfinished run resumes it (see ``WorkflowServer._session``)."""
        self._changed = anyio.Event()
        self.runtime = ReleasableRuntime(runtime, self._on_idle, self.poke if on_demand else None)
        """What runs execute in: the durable runtime, with idle release."""
        self._served = served
        self._by_class = {type_name(type(s.workflow)): s for s in served.values()}
        self._task_group = task_group
        self._idle_timeout = idle_timeout
        self._live: dict[str, _Live] = {}
        self.parked: dict[str, _Live] = {}
        """Unfinished runs released from memory while they waited for input."""
        self._parking = anyio.Event()
        self._reserved: set[str] = set()
        self._terminal = TerminalEvents(durable)
        """The last event of finished runs (they never change), read once."""
        self.stalled: dict[str, _Live] = {}
        """Unfinished runs stopped because the store failed; resumed once it works."""
        self.store_error: str | None = None
        """Why the store failed, while it fails (None: it works)."""
        self._store_failed = anyio.Event()

    # Starting and resuming.

    def served_as(self, served: Served) -> None:
        """Find the runs of ``served``'s workflow class under its name too (a
        workflow added while the server runs)."""
        self._by_class[type_name(type(served.workflow))] = served

    def workflow(self, name: str) -> Served:
        served = self._served.get(name)
        if served is None:
            raise NotFound(
                # The incumbent's words first: its clients and tests match on them.
                f"Workflow not found: no workflow {name!r} is served here; "
                "GET /workflows lists them"
                f" ({', '.join(sorted(self._served)) or 'none'})"
            )
        return served

    async def start(
        self, served: Served, start_event: StartEvent, handler_id: str, *, wait: bool = True
    ) -> _Live:
        """Start a new run under ``handler_id``.  On demand (no lifespan), a
        run nobody waits for (``wait=False``) is recorded and left unrun: no
        step of it starts before a request about it resumes it.

        :raises Conflict: if the id names a run already (running or finished):
            a caller-chosen id never takes over another run.
        """
        hold = self.on_demand and not wait
        if handler_id in self._live or handler_id in self._reserved:
            raise Conflict(f"handler {handler_id!r} is already running; choose another handler_id")
        self._reserved.add(handler_id)
        try:
            # A durable runtime checks that the id is free as it records the
            # run's start, in one transaction: no lookup first.
            catalog = self.durable
            if isinstance(catalog, DurableRuntime):
                new: contextlib.AbstractContextManager[None] = catalog.starting_new(handler_id)
            else:
                await self._check_free(handler_id)
                new = contextlib.nullcontext()
            if hold:
                self.runtime.hold.add(handler_id)
            try:
                with new:
                    handler = served.workflow.run(
                        start_event, run_id=handler_id, runtime=self.runtime
                    )
            except ContextSerdeError as exc:
                # from None: a route turns this into an HTTP answer that carries the message
                raise BadEvent(str(exc)) from None
            live = self._adopt(served, handler)
            live.new = True
            # Recorded before the client hears of it: any replica then finds it.
            try:
                await handler.wait_recorded()
            except DurabilityError as exc:
                live.abandoned = True  # nothing is recorded: nothing to resume
                self.stalled.pop(handler_id, None)
                if isinstance(exc, RunLockedError):  # the store has a run of that id
                    await live.stopped.wait()  # gone from the book before the answer
                    await self._check_free(handler_id)
                raise
            live.new = False
            if hold:
                # Recorded, and stopped there before any step's code ran: it
                # stays unfinished until a request about it resumes it.
                await live.stopped.wait()
        finally:
            self._reserved.discard(handler_id)
            self.runtime.hold.discard(handler_id)
        return live

    async def _check_free(self, handler_id: str) -> None:
        """:raises Conflict: if the store has a run of ``handler_id``."""
        record = await self.durable.get_run(handler_id)
        if record is not None:
            raise Conflict(
                f"handler id {handler_id!r} already names a {protocol_status(record.status)}"
                " run; choose another handler_id (or leave it out to get a fresh one)"
            )

    def _adopt(self, served: Served, handler: WorkflowHandler) -> _Live:
        run_id = handler.run_id
        live = self._live[run_id] = _Live(served, handler, utc(time.time()))
        parked = self.parked.pop(run_id, None) or self.stalled.pop(run_id, None)
        if parked is not None:
            live.ended = parked.ended  # a blocking /run of it still waits for its end
            live.started_at = parked.started_at
        self._task_group.start_soon(self._watch, live, name=f"anyflow server watch {run_id}")
        return live

    async def _watch(self, live: _Live) -> None:
        run_id = live.handler.run_id
        adapter = self.runtime.adapters.get(run_id)
        stalled = False
        try:
            await live.handler
            stop = live.handler.get_stop_event()
            if stop is not None and not isinstance(stop, WorkflowCancelledEvent):
                # Completed, and so recorded as such: GET /handlers/{id}, /run
                # and a replay need not read its end back.  (A run released
                # from memory, or stopped with the server, ends as cancelled.)
                self._terminal.remember(run_id, stop)
        except StoreUnavailableError as exc:
            # Still recorded as unfinished: it goes on once the store works.
            stalled = not live.abandoned
            self.store_failed(exc)
        except DurabilityError as exc:
            if not (live.new and isinstance(exc, RunLockedError)):  # a taken id: start() says so
                log.error("run %r could not go on: %s", run_id, exc)
        except Exception:
            pass  # the run's own failure: recorded, and shown by GET /handlers/{id}
        finally:
            self._live.pop(run_id, None)
            if adapter is not None and self.runtime.adapters.get(run_id) is adapter:
                del self.runtime.adapters[run_id]
            if stalled:
                self.stalled[run_id] = live
            elif adapter is not None and adapter.released:
                self.parked[run_id] = live
                self._parking.set()
                self._parking = anyio.Event()
                log.info("run %r released from memory while it waits for input", run_id)
            else:
                live.ended.set()
            live.stopped.set()
            self.poke()

    # Runs on demand.

    def poke(self) -> None:
        """Something changed that ``until_quiet`` waits for (a run carried out
        a batch or stopped, a request left)."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    @staticmethod
    def _quiet(live: _Live) -> bool:
        """Whether the run has nothing to do without outside input: ended, or
        no step running, no retry pending and no event queued for a step."""
        if live.handler.is_done():
            return True
        state = live.handler.ctx.run_state()
        if state is None or state.status is RunStatus.NOT_STARTED:
            return False
        if state.outcome is not None:
            return True
        return not (
            state.workers or state.retries or any(lane.queue for lane in state.lanes.values())
        )

    async def until_quiet(self, also: Callable[[], bool] = lambda: True) -> None:
        """Return once every run in memory is quiet (see ``_quiet``) and ``also()``
        holds, both seen at one moment (nothing happens in between)."""
        while True:
            changed = self._changed
            if also() and all(self._quiet(live) for live in list(self._live.values())):
                return
            await changed.wait()

    async def touch(self, handler_id: str, *, settle: bool) -> None:
        """On demand: resume ``handler_id`` if it is unfinished and not in
        memory, and with ``settle`` return once it is quiet.  Unknown and
        finished runs are left to the caller's own answer."""
        if not self.on_demand:
            return
        try:
            live = await self._running(handler_id)
        except (NotFound, Conflict):
            return
        while settle:
            changed = self._changed
            if self._quiet(live):
                return
            await changed.wait()

    async def wait_parked(self, run_id: str) -> None:
        """Return once ``run_id`` is released from memory (for tests and tools)."""
        while run_id not in self.parked:
            await self._parking.wait()

    def _on_idle(self, run_id: str, batches: int) -> None:
        if self._idle_timeout is not None:
            self._task_group.start_soon(self._release_if_still_idle, run_id, batches)

    async def _release_if_still_idle(self, run_id: str, batches: int) -> None:
        assert self._idle_timeout is not None
        await anyio.sleep(self._idle_timeout)
        adapter = self.runtime.adapters.get(run_id)
        live = self._live.get(run_id)
        if adapter is None or live is None or adapter.batches != batches or adapter.released:
            return  # something happened since it became idle
        state = live.handler.ctx.run_state()
        if state is None or not state.idle or state.outcome is not None:
            return
        deadlines = [w.deadline for w in state.waiting.values() if w.deadline is not None]
        if state.deadline is not None:
            deadlines.append(state.deadline)
        adapter.release()
        if deadlines:
            # Nobody may send it anything before then: wake it for its timeout.
            self._task_group.start_soon(self._wake_at, live, min(deadlines))

    async def _wake_at(self, live: _Live, deadline: float) -> None:
        # Wait for the release to complete first: the deadline may have passed
        # already (a slow machine), and a run not yet parked cannot be resumed.
        await live.stopped.wait()
        await anyio.sleep(max(0.0, deadline - time.time()))
        run_id = live.handler.run_id
        if self.parked.get(run_id) is live:
            self._resume(live.served, run_id)

    def _served_for(self, record: RunRecord) -> Served | None:
        return self._by_class.get(record.workflow)

    def _name_of(self, record: RunRecord) -> str:
        """The name the run's workflow is served under (its class, if not served)."""
        served = self._served_for(record)
        return served.name if served is not None else record.workflow

    async def resume_unfinished(self) -> int:
        """Resume every recorded unfinished run of a served workflow (at start)."""
        resumed = 0
        if not self.durable.resumes_recorded_runs:
            return 0
        for record in await self.durable.list_runs(status="running"):
            served = self._served_for(record)
            if served is None or record.run_id in self._live:
                continue
            self._resume(served, record.run_id)
            resumed += 1
        return resumed

    def _resume(self, served: Served, run_id: str) -> _Live:
        handler = self.durable.handler_for(served.workflow, run_id, self.runtime)
        return self._adopt(served, handler)

    async def _running(self, handler_id: str) -> _Live:
        """The live run of ``handler_id``, resumed from its journal if need be.

        :raises NotFound: for an unknown handler.
        :raises Conflict: for a finished one, or one of a workflow not served here.
        """
        live = self._live.get(handler_id)
        if live is not None:
            adapter = self.runtime.adapters.get(handler_id)
            if adapter is None or not adapter.released:
                return live
            await live.stopped.wait()  # being released: resume it once it stopped
            live = self._live.get(handler_id)
            if live is not None:
                return live
        record = await self.durable.get_run(handler_id)
        if record is None:
            raise NotFound(f"no handler {handler_id!r}")
        if record.status != "running":
            raise Finished(
                f"handler {handler_id!r} has finished ({protocol_status(record.status)})"
            )
        served = self._served_for(record)
        if served is None:
            raise Conflict(
                f"handler {handler_id!r} runs {record.workflow}, which this server does not serve"
            )
        live = self._live.get(handler_id)  # resumed by another request meanwhile
        return live if live is not None else self._resume(served, handler_id)

    async def wait(self, live: _Live) -> HandlerView:
        await live.ended.wait()
        view = await self.view(live.handler.run_id)
        assert view is not None
        return view

    # Talking to runs.

    async def send(self, handler_id: str, data: Any, step: str | None) -> None:
        """Deliver the event ``data`` describes; returns once it is recorded.

        :raises BadEvent: if it is not an event this workflow takes (nothing sent).
        :raises NotDelivered: if the runtime could not deliver it (nothing recorded).
        :raises Finished: if the run finished before the runtime delivered it.
        """
        live = await self._running(handler_id)
        event = live.served.registry.parse(data)
        if isinstance(event, StartEvent):
            # The run's own: sent in, it would run the entry step again with
            # the sender's fields, and that run would decide the result.
            raise BadEvent(
                f"the start event {type(event).__name__} cannot be sent into a run: it starts "
                "one; send an event a step takes, or start a new run"
            )
        if step is not None and not isinstance(step, str):
            raise BadEvent("step must be a step name (a string)")
        # The excepts below raise from None: a route answers each with its message.
        try:
            sent = live.handler.send_event(event, step=step)
        except ContextSerdeError as exc:  # the run's journal could not record it
            raise BadEvent(str(exc)) from None
        except WorkflowRuntimeError as exc:
            if live.handler.is_done():
                raise Finished(f"handler {handler_id!r} has finished") from None
            raise BadEvent(str(exc)) from None
        try:
            await sent
        except DurabilityError as exc:
            raise NotDelivered(str(exc)) from exc
        except WorkflowRuntimeError:
            # The run finished before the runtime delivered it (a DBOS
            # follower's message to a run whose end was recorded since it looked).
            raise Finished(f"handler {handler_id!r} has finished") from None

    async def cancel(self, handler_id: str, purge: bool) -> str:
        """Cancel the run (and with ``purge`` delete its records); the new status."""
        live: _Live | None
        try:
            live = await self._running(handler_id)
        except Finished as exc:
            if not purge:
                # from None: a route turns this into an HTTP answer that carries the message
                raise Finished(f"{exc}; pass purge=true to delete it") from None
            live = None
        if live is not None:
            await live.handler.cancel_run()
            await live.stopped.wait()
            if self.stalled.get(handler_id) is live:
                raise StoreUnavailableError(
                    f"handler {handler_id!r} could not record its cancellation: {self.store_error}"
                )
            await live.ended.wait()
        if not purge:
            return "cancelled"
        await self.durable.delete_run(handler_id)
        self._terminal.forget(handler_id)
        return "deleted"

    # When the store fails.

    def store_failed(self, error: BaseException) -> None:
        """Note that the store failed: ``/health`` says so, and the runs it
        stopped are resumed once ``keep_store`` sees it work again."""
        if self.store_error is None:
            log.warning("the store failed: %s", error)
        self.store_error = str(error)
        self._store_failed.set()

    async def check_store(self, probe: Callable[[], Awaitable[None]]) -> str | None:
        """Try the store now; why it fails, or None if it works."""
        try:
            await probe()
        except Exception as exc:  # any failure makes the server unhealthy
            self.store_failed(exc)
            return self.store_error
        if self.store_error is not None or self.stalled:
            self._store_back()
        return None

    def _store_back(self) -> None:
        if self.store_error is not None:
            log.warning("the store works again; resuming %d run(s)", len(self.stalled))
        self.store_error = None
        self._store_failed = anyio.Event()
        for run_id, live in list(self.stalled.items()):
            if run_id not in self._live:
                self._resume(live.served, run_id)

    async def keep_store(self, probe: Callable[[], Awaitable[None]], interval: float) -> None:
        """While the store fails, try it every ``interval`` seconds; once it
        works, resume the runs its failure stopped.  Runs for the server's life."""
        while True:
            await self._store_failed.wait()
            await anyio.sleep(interval)
            await self.check_store(probe)

    # Describing runs.

    @staticmethod
    def _unrecorded(live: _Live) -> HandlerView:
        return unrecorded(live.handler.run_id, live.served.name, live.started_at)

    async def view(self, handler_id: str) -> HandlerView | None:
        live = self._live.get(handler_id)
        record = await self.durable.get_run(handler_id)
        if record is None:
            return self._unrecorded(live) if live is not None else None
        return await describe(record, self._name_of(record), self._terminal)

    async def views(
        self,
        statuses: set[str] | None = None,
        names: set[str] | None = None,
        *,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
    ) -> tuple[list[HandlerView], tuple[float, str] | None]:
        """Up to ``limit`` handlers, oldest first, from the one after the
        position ``after`` (its start time and id); and the position of the
        last one when more follow (None: this is the last page)."""
        views: list[HandlerView] = []
        records = await self.durable.list_runs()
        seen = {record.run_id for record in records}
        for record in records:
            position = (record.created_at.timestamp(), record.run_id)
            if after is not None and position <= after:
                continue
            if names is not None and self._name_of(record) not in names:
                continue
            if statuses is not None and protocol_status(record.status) not in statuses:
                continue
            if limit is not None and len(views) == limit:
                last = views[-1]
                return views, (last.started_at.timestamp(), last.handler_id)
            views.append(await describe(record, self._name_of(record), self._terminal))
        # Runs started and not yet recorded (a moment): on the last page.
        for run_id, live in list(self._live.items()):
            if run_id in seen or (names is not None and live.served.name not in names):
                continue
            if statuses is None or "running" in statuses:
                views.append(self._unrecorded(live))
        return views, None

    # Streams.

    async def stream(
        self, handler_id: str, after: int | None
    ) -> tuple[LiveEventFeed | None, int | None]:
        """The events of ``handler_id`` after the recorded position ``after``
        (None: from now on), in batches: live as they are published where the
        catalog can (a ``LiveRunCatalog``, as ``DurableRuntime``), recorded
        ones otherwise.  None if the run has finished and nothing is recorded
        after that point.  With them, the position they come after: ``after``,
        or, for now, the last one recorded when the store is read for it (a
        run not executed here); None where the live feed finds it (a run
        executed here: its events published and not yet recorded count), and
        gives it first, as a ``Committed``.

        :raises NotFound: for an unknown handler.
        """
        catalog = self.durable
        await self.touch(handler_id, settle=False)  # on demand: the stream runs it
        # A run known to have finished stays so: no need to ask the store;
        # nor for one that executes here, which the live feed follows.
        finished = handler_id in self._terminal
        live = self._live.get(handler_id)
        here = live is not None and not live.ended.is_set()
        if not finished and not here:
            record = await catalog.get_run(handler_id)
            if record is None and handler_id not in self._live:
                raise NotFound(f"no handler {handler_id!r}")
            finished = record is not None and record.status != "running"
        if finished:
            # A finished run's events are all recorded: one read gives them.
            if after is None:
                return None, None  # nothing comes after now
            events = await catalog.read_events(handler_id, after)
            return (Replay(events) if events else None), after
        live_catalog = self._live_catalog
        if here and live_catalog is not None:  # the live feed finds now itself
            return live_catalog.live_events(handler_id, after), after
        if after is None:
            # Now is read once, here: a stream opened again (after a read
            # that failed) goes on from this position, not from a later now.
            records = await catalog.read_events(handler_id)
            after = records[-1].seq if records else -1
        if live_catalog is not None:
            return live_catalog.live_events(handler_id, after), after
        return OneByOne(catalog.events(handler_id, after)), after
