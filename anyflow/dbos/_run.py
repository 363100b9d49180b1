"""``DBOSJournal``: the journal of one run, kept as the steps of its DBOS workflow.

The bookkeeping every journaling runtime shares is
``anyflow.durable.journaling``; this is what DBOS adds.  A batch is one
``anyflow.record`` step holding a ``Batch`` record (``_records``: its ticks,
the events recorded with it, how many of its ticks came as DBOS messages, the
workflow's fingerprint with a run's first batch, the state when it changed);
a ``Receive`` record announces a round of ``DBOS.recv``, so that a replay
receives at the same places.  The run's DBOS workflow returns an ``End``
record: its outcome, with the events not yet recorded.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from dbos import DBOS
from dbos._error import DBOSWorkflowConflictIDError as _ConflictError

from ..durable.journal import fingerprint
from ..durable.journaling import JournalingExternal, JournalingInternal, RunJournal
from ..errors import ContextSerdeError, DurabilityError, WorkflowRuntimeError
from ..runtime.vocabulary import is_external
from ..serialization import decode_event, decode_tick, encode_tick
from . import _bridge
from ._records import Batch, End, Receive, write

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterable, Sequence

    from ..events import Event
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Recovery
    from ..runtime.vocabulary import Command, Outcome, Tick
    from ..workflow import Workflow
    from ._ownership import RunOwnership

__all__ = ["DBOSJournal", "Role", "decode_events", "decode_message", "decode_ticks"]


class Role(enum.Enum):
    """What this process does with a run."""

    EXECUTES = "executes"
    """The run executes here: its batches are recorded through its DBOS
    workflow, once DBOS has handed that over (``DBOSJournal.context``)."""
    FOLLOWS = "follows"
    """The run executes in some process of the application (maybe this one)
    and is read from its record here; what is sent to it goes as DBOS messages."""


class DBOSJournal(RunJournal):
    """What the two adapters of one run share."""

    __slots__ = (
        "context",
        "done",
        "exists",
        "failure",
        "handle",
        "internal",
        "mail",
        "owner",
        "pending",
        "received",
        "recorded",
        "role",
        "sending",
        "undelivered",
        "workflow",
    )

    def __init__(self, owner: RunOwnership, run_id: str, role: Role) -> None:
        super().__init__(run_id)
        self.owner = owner
        self.role = role
        self.context: Any = None
        """The run's DBOS workflow context, once DBOS has handed it over."""
        self.done: asyncio.Future[str] | None = None
        """Resolved with the run's result when it ends here; the run's DBOS
        workflow is waiting for it."""
        self.handle: Any = None
        """DBOS's handle of the run's workflow, when it was started here."""
        self.recorded = False
        """Whether a batch of the run is recorded (the first carries the
        workflow's fingerprint)."""
        self.internal: InternalRunAdapter | None = None
        self.mail = False
        """A message waits for this run (a hint: ``recv`` then takes it)."""
        self.received: deque[Tick] = deque()
        """Ticks received and not yet recorded in a batch."""
        self.pending: list[Any] = []
        """Events published and not yet recorded, encoded."""
        self.sending = 0
        """Ticks a follower is sending as DBOS messages."""
        self.exists = False
        """The run's DBOS workflow is known to exist (a follower's messages
        wait for it: DBOS refuses a message to a workflow it does not have)."""
        self.failure: BaseException | None = None
        """Why ``recover`` failed, if it did."""
        self.undelivered: DurabilityError | WorkflowRuntimeError | None = None
        """Why a follower's message did not reach the run (a DurabilityError,
        or the WorkflowRuntimeError of a send to a finished run), until a
        caller awaiting a send is told."""
        self.workflow: Workflow | None = None

    # What the shared adapters ask.

    def holds(self) -> bool:
        return self.context is not None

    def records_events(self) -> bool:
        return not self.ended and self.role is Role.EXECUTES

    def waiting(self, target: int) -> bool:
        if self.role is Role.FOLLOWS:
            # Even once the run has ended here: each send ends soon after
            # (delivered, or refused), and the caller hears which.
            return self.sending > 0
        return super().waiting(target)

    def check_accepted(self, target: int) -> None:
        error, self.undelivered = self.undelivered, None
        if error is not None:
            raise error

    def recovery_failed(self, error: BaseException) -> None:
        self.failure = error
        if self.done is not None and not self.done.done():
            self.done.cancel()
        super().recovery_failed(error)

    async def recover(
        self, inner: InternalRunAdapter, workflow: Workflow, start_event: Event | None
    ) -> Recovery | None:
        return await self.owner.recover(self, inner, workflow, start_event)

    def pend(self, event: Event, published: bool) -> None:
        self.pending.append(self.encode_event(event))

    async def commit(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        try:
            encoded = tuple(encode_tick(tick, f"$.t[{i}]") for i, tick in enumerate(ticks))
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record a tick: {exc} (a run's events must be "
                "JSON-safe)"
            ) from exc
        events = self.pending
        self.take_published(commands)
        received: list[Tick] = []
        if self.received:
            # The messages among these ticks (the driver may reorder a batch):
            # a replay takes as many from what it receives again.
            waiting = {id(tick) for tick in self.received}
            received = [tick for tick in ticks if id(tick) in waiting]
        snapshot = self.snapshot()
        batch = Batch(
            t=encoded,
            e=tuple(events),
            m=len(received) if self.received else None,
            f=None if self.recorded else fingerprint(self.workflow),  # type: ignore[arg-type]
            s=None if snapshot is None else snapshot[0],
        )
        try:
            text = write(batch)
        except ContextSerdeError as exc:
            raise DurabilityError(f"run {self.run_id!r} cannot record a batch: {exc}") from exc
        self.pending = []
        await self.record(text)
        self.recorded = True
        if received:
            taken = {id(tick) for tick in received}
            self.received = deque(t for t in self.received if id(t) not in taken)
        self.committed(self.count_sent(ticks), snapshot[1] if snapshot else None)

    async def end(self, outcome: Outcome, final: bool) -> None:
        done = self.done
        if done is None or done.done():
            return
        if final:
            events, self.pending = self.pending, []
            done.set_result(write(End(outcome, tuple(events))))
            await self.owner.until_recorded(self)
        else:
            done.cancel()  # the DBOS workflow stays pending: resumable

    async def record_end(self, outcome: Outcome, terminal: Event) -> None:
        assert self.done is not None
        self.done.set_result(write(End(outcome, (self.encode_event(terminal),))))
        await self.owner.until_recorded(self)

    def close(self, outcome: Outcome) -> Outcome:
        self.owner.forget(self)
        return super().close(outcome)

    # DBOS.

    async def record(self, payload: str | None) -> bool:
        """Record one step of the run's DBOS workflow; whether it executed
        (False: DBOS had it recorded and returned that record)."""
        executed: list[bool] = []
        try:
            await _bridge.record(executed, payload)
        except _ConflictError:
            # from None: DBOS's conflict error says less than this message
            raise DurabilityError(
                f"run {self.run_id!r} was taken over by another process: it goes on there; "
                "follow it with runtime.attach()"
            ) from None
        return bool(executed)

    async def receive_mail(self) -> None:
        """Take every message waiting for the run, announced by a record step
        so that a replay calls ``recv`` at the same places."""
        await self.record(write(Receive()))
        while (message := await DBOS.recv_async(_bridge.TOPIC, 0)) is not None:
            self.received.append(decode_message(message, self.run_id))


class DBOSInternal(JournalingInternal):
    """The driver's side: a run executing here also takes its DBOS messages."""

    __slots__ = ("_run",)

    def __init__(self, inner: InternalRunAdapter, run: DBOSJournal) -> None:
        super().__init__(inner, run)
        self._run = run
        run.internal = inner

    async def receive_ticks(self) -> list[Tick]:
        run = self._run
        ticks = await self.inner.receive_ticks()
        if run.mail and run.role is Role.EXECUTES:
            run.mail = False
            await run.receive_mail()
        if run.received:
            ticks = [*run.received, *ticks]
        return ticks


class DBOSExternal(JournalingExternal):
    """The caller's side: a follower's sends go to the run as DBOS messages."""

    __slots__ = ("_run",)

    def __init__(self, inner: ExternalRunAdapter, run: DBOSJournal) -> None:
        super().__init__(inner, run)
        self._run = run

    def send_tick(self, tick: Tick) -> None:
        run = self._run
        if run.role is Role.EXECUTES:
            super().send_tick(tick)
            return
        if self.inner.outcome is not None:
            self.inner.send_tick(tick)  # raises: the run has finished
        if is_external(tick):
            run.check_sent(tick)
        run.sending += 1
        owner = run.owner
        owner.spawn(lambda: owner.send(run, tick), name="anyflow dbos send")


def decode_events(data: Iterable[Any], run_id: str, seq: int) -> list[Event]:
    """The events of the batch record ``seq``."""
    try:
        return [decode_event(item, f"$.e[{i}]") for i, item in enumerate(data)]
    except ContextSerdeError as exc:
        raise DurabilityError(f"batch record {seq} of run {run_id!r}: {exc}") from exc


def decode_ticks(data: Iterable[Any], run_id: str, seq: int) -> list[Tick]:
    """The ticks of the batch record ``seq``."""
    try:
        return [decode_tick(item, f"$.t[{i}]") for i, item in enumerate(data)]
    except ContextSerdeError as exc:
        raise DurabilityError(f"batch record {seq} of run {run_id!r}: {exc}") from exc


def decode_message(message: Any, run_id: str) -> Tick:
    """The tick a DBOS message carries."""
    try:
        return decode_tick(json.loads(message), "$")
    except (ValueError, TypeError, ContextSerdeError) as exc:
        raise DurabilityError(
            f"run {run_id!r} received a message that is not a tick: {exc}"
        ) from exc


def encode_message(tick: Tick) -> str:
    """``tick`` as a DBOS message."""
    return json.dumps(encode_tick(tick))
