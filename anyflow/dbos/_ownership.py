"""``RunOwnership``: which process executes a run, and how it comes to.

A run executes where its DBOS workflow executes.  A new run is started here
(DBOS refuses a second start of the same id); an unfinished one is taken over
(``DBOS.resume_workflow``: DBOS re-enqueues it, and the process that dequeues
it executes it, fencing off the one that had it at its next record); DBOS
also hands this process runs on its own (recovered at launch).  Whichever
way, the run's DBOS workflow hands its context over here (``execute``, the
``_bridge.Host`` of this process), and the run's driver replays its record in
that context and goes on.  A run this process does not execute it follows,
reading its record.  Ticks sent from other processes arrive as DBOS messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from dbos import DBOS, SetWorkflowID
from dbos._error import DBOSWorkflowIDInUseError as _InUseError

from ..durable.journal import (
    check_fingerprint,
    decode_record,
    default_start,
    encode_record,
    replay_ticks,
)
from ..errors import ContextSerdeError, DurabilityError, RunLockedError, WorkflowRuntimeError
from ..runtime import Recovery
from ..runtime.vocabulary import run_spec
from ..serialization import decode_event, encode_event, type_name
from . import _bridge
from ._bridge import FINISHED
from ._catalog import DBOSRunCatalog
from ._records import Receive, read_step
from ._run import (
    DBOSJournal,
    Role,
    decode_events,
    decode_message,
    decode_ticks,
    encode_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ..events import Event
    from ..handler import WorkflowHandler
    from ..runtime import InternalRunAdapter, Runtime
    from ..runtime.vocabulary import Tick
    from ..workflow import Workflow
    from ._process import DBOSProcess

__all__ = ["RunOwnership"]

log = logging.getLogger("anyflow.dbos")

_Started = tuple[Any, "asyncio.Future[str]"]
"""A run's DBOS workflow context, and the future its result goes to."""


class RunOwnership:
    """The runs of this process: those it executes (``active``), those it is
    about to be handed (starts, take-overs, adoptions), and the workflows it
    can execute a run of.  The ``_bridge.Host`` of the process."""

    loop: asyncio.AbstractEventLoop

    def __init__(
        self,
        runtime: Runtime,
        process: DBOSProcess,
        poll_interval: float,
        attach_timeout: float,
    ) -> None:
        self.runtime = runtime
        """The runtime the runs execute in (the ``DBOSRuntime``)."""
        self.process = process
        self.poll_interval = poll_interval
        self.attach_timeout = attach_timeout
        """How long a follower waits for a run not recorded yet."""
        self.workflows: dict[str, Workflow] = {}
        self.active: dict[str, DBOSJournal] = {}
        """The runs executing here, by id."""
        self.catalog = DBOSRunCatalog(self.active, poll_interval)
        self._starts: dict[str, tuple[asyncio.Future[_Started], bool]] = {}
        """Runs started or taken over here, whose DBOS workflow is awaited."""
        self._adoptions: dict[str, tuple[Any, asyncio.Future[str], str]] = {}
        """Runs DBOS handed this process on its own, until their driver recovers."""
        self._following: set[str] = set()
        """Runs about to be opened by ``attach``."""

    # Opening a run.

    def open(self, run_id: str) -> DBOSJournal:
        """A new journal for the run ``run_id`` (see ``hold``).

        :raises RunLockedError: if the run executes here already.
        """
        following = run_id in self._following
        self._following.discard(run_id)
        if not following and run_id in self.active:
            raise RunLockedError(
                f"run {run_id!r} is already executing in this runtime: use the handler "
                "that started it, or runtime.attach() to follow it"
            )
        return DBOSJournal(self, run_id, Role.FOLLOWS if following else Role.EXECUTES)

    def hold(self, run: DBOSJournal) -> None:
        """``run``, opened, executes here (unless it follows)."""
        if run.role is Role.EXECUTES:
            self.active[run.run_id] = run

    def attach(self, workflow: Workflow, run_id: str) -> WorkflowHandler:
        self._following.add(run_id)
        try:
            return workflow.run(run_id=run_id, runtime=self.runtime)
        finally:
            self._following.discard(run_id)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run ``fn`` in the runtime's task group."""
        self.runtime.spawn(fn, name=name)

    def forget(self, run: DBOSJournal) -> None:
        """``run`` has finished here."""
        if self.active.get(run.run_id) is run:
            del self.active[run.run_id]

    def add_workflow(self, workflow: Workflow) -> None:
        self.workflows.setdefault(type_name(type(workflow)), workflow)

    def stop(self) -> None:
        """Stop waiting for the runs about to be handed over."""
        for waiter, _ in self._starts.values():
            waiter.cancel()
        for _, done, _ in self._adoptions.values():
            done.cancel()
        self._starts.clear()
        self._adoptions.clear()

    # The run's DBOS workflow hands itself over here (see _bridge.run).

    async def execute(self, run_id: str, workflow: str, start: str, context: Any) -> str:
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
                instance.run(run_id=run_id, runtime=self.runtime)
            except BaseException:
                self._adoptions.pop(run_id, None)
                raise
        return await done

    def _workflow_named(self, name: str) -> Workflow | None:
        found = self.workflows.get(name)
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
        self.workflows[name] = found
        return found

    # Recovery, in the run's driver task.

    async def recover(
        self,
        run: DBOSJournal,
        inner: InternalRunAdapter,
        workflow: Workflow,
        start_event: Event | None,
    ) -> Recovery | None:
        # This task may have been started from inside another run's step: its
        # DBOS calls belong to no workflow until this run's is handed over.
        _bridge.use_context(None)
        name = type_name(type(workflow))
        self.workflows.setdefault(name, workflow)
        run.workflow = workflow
        adopted = self._adoptions.pop(run.run_id, None)
        if adopted is not None:
            run.context, run.done, start = adopted
            return await self._replay(run, inner, workflow, start)
        status = await DBOS.get_workflow_status_async(run.run_id)
        if run.role is Role.FOLLOWS:
            # A run started here, or in another process, a moment ago may not
            # be recorded yet: wait for it (for one starting here, until it is).
            deadline = anyio.current_time() + self.attach_timeout
            while status is None and (run.run_id in self.active or anyio.current_time() < deadline):
                await anyio.sleep(self.poll_interval)
                status = await DBOS.get_workflow_status_async(run.run_id)
            if status is None:
                # A DurabilityError: the follower ends Broken, as a run whose
                # record cannot be read does, instead of crashing its driver.
                raise DurabilityError(
                    f"no run {run.run_id!r} is recorded: none started within "
                    f"attach_timeout ({self.attach_timeout:g} s); start it with "
                    "wf.run(run_id=...)"
                )
            _check_status(run, status, name)
            return await self._follow(run, inner)
        if status is None:
            if start_event is None:
                start_event = default_start(workflow, run.run_id)
            recovery = await self._start(run, name, start_event)
            if recovery is not None:
                return recovery
            status = await DBOS.get_workflow_status_async(run.run_id)
        assert status is not None
        _check_status(run, status, name)
        if status.status in FINISHED:
            return await self._follow(run, inner)
        status, taken = await self._take_over(run, status)
        if not taken:
            return await self._follow(run, inner)
        assert status is not None
        start = status.input["args"][2] if status.input else ""
        return await self._replay(run, inner, workflow, start)

    async def _start(self, run: DBOSJournal, name: str, start_event: Event) -> Recovery | None:
        """Start the run's DBOS workflow and wait for it to be handed over;
        None if the run id is taken (started elsewhere meanwhile)."""
        try:
            start = encode_record(encode_event(start_event))
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {run.run_id!r} cannot record its start event: {exc}"
            ) from exc
        waiter: asyncio.Future[_Started] = self.loop.create_future()
        self._starts[run.run_id] = (waiter, True)
        try:
            with SetWorkflowID(run.run_id, workflow_id_reuse_policy="reject"):
                run.handle = await DBOS.start_workflow_async(_bridge.run, run.run_id, name, start)
        except _InUseError:
            self._starts.pop(run.run_id, None)
            return None
        run.context, run.done = await waiter
        run.notify()
        _bridge.use_context(run.context)
        return Recovery(start_event=start_event)

    async def _take_over(self, run: DBOSJournal, status: Any) -> tuple[Any, bool]:
        """Take the unfinished run over: DBOS re-enqueues it; the process that
        dequeues it (this one, most often) executes it.  Its latest status,
        and whether it executes here (False: another process dequeued it
        first, or it ended meanwhile)."""
        waiter: asyncio.Future[_Started] = self.loop.create_future()
        self._starts[run.run_id] = (waiter, False)
        try:
            await DBOS.resume_workflow_async(run.run_id)
            while True:
                with anyio.move_on_after(self.poll_interval):
                    run.context, run.done = await asyncio.shield(waiter)
                    break
                status = await DBOS.get_workflow_status_async(run.run_id)
                if status is not None and (
                    status.status in FINISHED
                    or (
                        status.status == "PENDING"
                        and status.executor_id != self.process.executor_id
                    )
                ):
                    run.role = Role.FOLLOWS  # another process dequeued it first
                    self.active.pop(run.run_id, None)
                    return status, False
        finally:
            if self._starts.get(run.run_id, (None,))[0] is waiter:
                del self._starts[run.run_id]
        return status, True

    async def _replay(
        self, run: DBOSJournal, inner: InternalRunAdapter, workflow: Workflow, start: str
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
            batch = read_step(text, run_id, seq)
            if isinstance(batch, Receive):
                while (message := await DBOS.recv_async(_bridge.TOPIC, 0)) is not None:
                    received.append(decode_message(message, run_id))
                continue
            if batch.f is not None:
                check_fingerprint(run_id, workflow, batch.f)
            for _ in range(batch.m or 0):
                if not received:
                    raise DurabilityError(
                        f"batch record {seq} of run {run_id!r} names a message that was "
                        "never received: the record is damaged"
                    )
                received.popleft()
            ticks.extend(decode_ticks(batch.t, run_id, seq))
            events.extend(decode_events(batch.e, run_id, seq))
            if batch.s is not None:
                state_data = batch.s
            seq += 1
        run.recorded = seq > 0
        run.received = received
        if not ticks:
            data = decode_record(start, run_id, "start", 0)
            try:
                return Recovery(start_event=decode_event(data, "$.start"))
            except ContextSerdeError as exc:
                raise DurabilityError(f"the start event of run {run_id!r}: {exc}") from exc
        state = replay_ticks(run_id, run_spec(workflow), ticks)
        return await run.resume(inner, state, events, state_data)

    async def _follow(self, run: DBOSJournal, inner: InternalRunAdapter) -> Recovery:
        """Publish the run's recorded events as they are recorded, until it
        ends; its outcome."""
        run.role = Role.FOLLOWS
        run.exists = True  # a follower's messages can go now
        run.notify()
        reader = self.catalog.reader(run.run_id)
        while True:
            for event in await reader.read():
                inner.publish(event.event)
            if reader.outcome is not None:
                return Recovery(outcome=reader.outcome)
            await reader.wait()

    async def until_recorded(self, run: DBOSJournal) -> None:
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
                if status is None or status.status in FINISHED:
                    return
                await anyio.sleep(0.005)
        log.warning("run %r ended, and DBOS has not recorded its end yet", run.run_id)

    # Messages.

    async def send(self, run: DBOSJournal, tick: Tick) -> None:
        """Send ``tick`` to the run as a DBOS message (from a follower), once
        the run's DBOS workflow exists: DBOS refuses a message to a workflow it
        does not have, and a run started a moment ago may not have it yet.
        The message is written only if the run's end is not recorded by then
        (``_bridge.send_unless_ended``): DBOS would take it for an ended
        workflow, which never receives it.  If the run turns out not to
        exist, has ended, or DBOS refuses the message, the caller awaiting a
        send hears why (``check_accepted``)."""
        _bridge.use_context(None)  # maybe spawned from a step: not part of its run's record
        try:
            # The follower's recovery finds the workflow (waiting for one
            # starting here), or fails and ends the follower.
            while not run.exists and not run.ended:
                await run.next_change().wait()
            if not run.exists:
                why = run.failure or "the follower ended before it found the run"
                raise DurabilityError(
                    f"{_what(tick)} was not delivered to run {run.run_id!r}: {why}"
                ) from run.failure
            try:
                ended = await _bridge.send_unless_ended(run.run_id, encode_message(tick))
            except Exception as exc:
                raise DurabilityError(
                    f"{_what(tick)} was not delivered to run {run.run_id!r}: DBOS refused "
                    f"the message ({exc}); send it again"
                ) from exc
            if ended is not None:
                # As the runtime a run executes in refuses a tick once it ended.
                raise WorkflowRuntimeError(
                    f"run {run.run_id!r} has finished; {_what(tick)} was not delivered"
                )
            local = self.active.get(run.run_id)
            if local is not None and local.internal is not None:
                local.mail = True
                local.internal.interrupt()
        except (DurabilityError, WorkflowRuntimeError) as exc:
            if run.undelivered is None:
                run.undelivered = exc
            log.error("%s", exc)
        finally:
            run.sending -= 1
            run.notify()

    async def watch_mail(self) -> None:
        """Tell the runs executing here that a message waits for them."""
        while True:
            await anyio.sleep(self.poll_interval)
            runs = [
                r
                for r in self.active.values()
                if r.internal is not None and r.role is Role.EXECUTES
            ]
            if not runs:
                continue
            waiting = await anyio.to_thread.run_sync(_bridge.pending_messages)
            for r in runs:
                if r.run_id in waiting and r.internal is not None:
                    r.mail = True
                    r.internal.interrupt()


def _what(tick: Tick) -> str:
    """What ``tick`` carries, for an error."""
    event = getattr(tick, "event", None)
    return type(event if event is not None else tick).__name__


def _check_status(run: DBOSJournal, status: Any, name: str) -> None:
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
