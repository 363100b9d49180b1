"""The journaling adapters: what every runtime that records its runs shares.

A journaling runtime (``DurableRuntime`` in a ``Store``, ``DBOSRuntime`` in
DBOS) records each batch of ticks the reducer applied before any command of
the batch runs, with the events published since the last batch, the events
the batch's ``Publish`` commands are about to publish, and a snapshot of the
run's state when it changed.  A run is then rebuilt by folding its recorded
ticks.  The runtimes differ only in where a batch goes and how a run is found
again; the rest is here, and is theirs to share (or a user's own journaling
runtime's):

- ``RunJournal``: the bookkeeping the two adapters of one run share (events
  not yet recorded, events recorded ahead of their publication, the caller's
  sends counted until a commit holds them, the state's version, the end of a
  run whose last batch was recorded and its end was not).  A runtime
  subclasses it with ``recover``, ``commit``, ``end``, ``pend`` and
  ``record_end``.
- ``JournalingInternal`` and ``JournalingExternal``: adapter decorators that
  call the journal at the driver's hooks and at the caller's sends.
- ``check_start_event``: a start event the journal could not record is
  refused before the run starts (``Runtime.check_event``).

Rules, as the two runtimes rely on them:

1. A value the journal cannot record (or read back) is refused in the caller
   that sends it, before anything is sent: once accepted, it would stop the run.
2. An event is recorded before or with the batch whose commands publish it; an
   event a step writes to the stream goes with the next batch.
3. ``wait_accepted`` returns once every tick the caller sent is in a committed
   batch (or the run has ended): the caller may then rely on it surviving.
4. A run whose last batch was recorded without its end (the process died in
   between) is ended by its next execution, which records the end first.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import ContextSerdeError, DurabilityError
from ..events import Event, InternalEvent
from ..runtime import (
    ExternalRunAdapterDecorator,
    InternalRunAdapterDecorator,
    Recovery,
    terminal_event,
)
from ..runtime.vocabulary import Publish, is_external
from ..serialization import encode_event, encode_value
from ._journal import checked_event_record, checked_tick_record, load_state

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..context import StateStore
    from ..runtime import ExternalRunAdapter, InternalRunAdapter
    from ..runtime.vocabulary import Command, Outcome, RunState, Tick
    from ..workflow import Workflow

__all__ = [
    "JournalingExternal",
    "JournalingInternal",
    "RunJournal",
    "check_start_event",
]


def check_start_event(event: Event) -> None:
    """Refuse now a start event a journal could not record (or read back).

    :raises ContextSerdeError: naming the value and its path.
    """
    try:
        checked_event_record(event)
    except ContextSerdeError as exc:
        # The cause kept: it leads to the user's code that failed (a converter,
        # a validator), if any.
        raise ContextSerdeError(
            f"a durable run cannot record the start event {type(event).__name__}: {exc}; "
            "nothing was started (a durable run records its events as JSON: finite "
            "numbers, text, string keys, values that fit the fields' types)"
        ) from exc


class RunJournal(ABC):
    """What the two adapters of one journaled run share.

    A runtime subclasses it with where batches go: ``recover`` (find the
    run's record and fold it), ``commit`` (record one batch), ``end`` (record
    the run's end), ``pend`` (keep an event for the next commit) and
    ``record_end`` (rule 4).  The helpers below do the bookkeeping.
    """

    __slots__ = (
        "committed_sent",
        "ended",
        "prelogged",
        "recovered",
        "run_id",
        "sent",
        "state_store",
        "state_version",
        "wakeup",
    )

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.ended = False
        """Set once the run has finished here (``close``)."""
        self.recovered = False
        """Set once ``recover`` has returned: the run's record is read."""
        self.prelogged: deque[Any] = deque()
        """Events recorded with a commit, about to be published by its commands."""
        self.sent = 0
        """Ticks the caller sent (those a journal records)."""
        self.committed_sent = 0
        """How many of them are in a committed batch."""
        self.state_store: StateStore[Any] | None = None
        self.state_version = 0
        """The version of the state store as last recorded."""
        self.wakeup: anyio.Event | None = None

    # What a runtime's journal does.

    @abstractmethod
    async def recover(
        self, inner: InternalRunAdapter, workflow: Workflow, start_event: Event | None
    ) -> Recovery | None:
        """Find the run's record: a new run's start, or its folded ticks (see ``resume``)."""

    @abstractmethod
    async def commit(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        """Record one batch, before its commands run."""

    @abstractmethod
    async def end(self, outcome: Outcome, final: bool) -> None:
        """Record the run's end (``final``), or let the run go unfinished."""

    @abstractmethod
    def pend(self, event: Event, published: bool) -> None:
        """Keep ``event`` to be recorded with the next commit: one the batch's
        commands publish (``published``), or one a step wrote to the stream."""

    @abstractmethod
    async def record_end(self, outcome: Outcome, terminal: Event) -> None:
        """Record the end of a run whose last batch was recorded and whose end
        was not, with its last event ``terminal`` (rule 4)."""

    def holds(self) -> bool:
        """Whether this execution holds the run, so the caller's sends are
        committed here (before that, ``wait_accepted`` waits)."""
        return True

    def records_events(self) -> bool:
        """Whether the events published here are this journal's to record."""
        return not self.ended

    def failed(self, error: DurabilityError) -> None:
        """The run cannot be recorded (a commit or the recovery failed)."""
        self.notify()

    def recovery_failed(self, error: BaseException) -> None:
        """``recover`` raised ``error``."""
        if isinstance(error, DurabilityError):
            self.failed(error)

    def mark_recovered(self) -> None:
        """``recover`` has returned."""
        self.recovered = True

    def waiting(self, target: int) -> bool:
        """Whether a caller that sent ``target`` ticks waits on (rule 3)."""
        return not self.ended and (not self.holds() or self.committed_sent < target)

    def check_accepted(self, target: int) -> None:  # noqa: B027 - an optional hook
        """Once the wait is over: raise if the ``target`` sends were not recorded."""

    def check_sent(self, tick: Tick) -> None:
        """Refuse a tick the caller sends that the journal could not record (rule 1).

        :raises ContextSerdeError: naming the value and its path.
        """
        checked_sent(self.run_id, tick)

    def unsent(self, tick: Tick) -> None:  # noqa: B027 - an optional hook
        """``tick``, checked, was not sent after all."""

    def close(self, outcome: Outcome) -> Outcome:
        """The run has finished here: the outcome its handler gives."""
        self.ended = True
        self.prelogged.clear()
        self.notify()
        return outcome

    # The bookkeeping.

    def notify(self) -> None:
        """Wake those waiting for the next commit (or the end)."""
        if self.wakeup is not None:
            self.wakeup.set()
            self.wakeup = None

    def next_change(self) -> anyio.Event:
        """Set at the next commit (or the end)."""
        if self.wakeup is None:
            self.wakeup = anyio.Event()
        return self.wakeup

    def record_event(self, event: Any) -> None:
        """An event published: recorded already (rule 2), or pending."""
        if self.prelogged and self.prelogged[0] is event:
            self.prelogged.popleft()
        elif not isinstance(event, InternalEvent) and self.records_events():
            self.pend(event, False)

    def take_published(self, commands: Sequence[Command]) -> None:
        """The events the batch's commands publish, recorded with it (rule 2)."""
        for command in commands:
            if type(command) is Publish and not isinstance(command.event, InternalEvent):
                self.pend(command.event, True)
                self.prelogged.append(command.event)

    def encode_event(self, event: Event) -> Any:
        """``event`` as the journal records it.

        :raises DurabilityError: if it is not JSON-safe.
        """
        try:
            return encode_event(event)
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record the event {type(event).__name__}: {exc} "
                "(a durable run's events must be JSON-safe)"
            ) from exc

    def snapshot(self) -> tuple[Any, int] | None:
        """The state as the journal records it, and its version, if it changed
        since it was last recorded.

        :raises DurabilityError: if it is not JSON-safe.
        """
        store = self.state_store
        if store is None or store.version == self.state_version:
            return None
        try:
            return encode_value(store.to_dict(), "$.state"), store.version
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record its state: {exc} (a durable run's "
                "state must be JSON-safe)"
            ) from exc

    @staticmethod
    def count_sent(ticks: Sequence[Tick]) -> int:
        """How many of ``ticks`` came from the caller."""
        return sum(1 for tick in ticks if is_external(tick))

    def committed(self, sent: int, version: int | None) -> None:
        """A batch holding ``sent`` of the caller's ticks (and the state's
        ``version``, if it held a snapshot) is recorded."""
        if version is not None:
            self.state_version = version
        self.committed_sent += sent
        self.notify()

    async def resume(
        self,
        inner: InternalRunAdapter,
        state: RunState,
        events: Sequence[Event],
        state_data: Any,
    ) -> Recovery:
        """Go on from the recorded run: ``state`` (its folded ticks), the
        ``events`` it recorded, and its last recorded state snapshot, if any.
        A run whose end was not recorded is ended now (rule 4)."""
        outcome = state.outcome
        if outcome is not None:
            terminal = terminal_event(outcome)
            await self.record_end(outcome, terminal)
            for event in (*events, terminal):
                inner.publish(event)
            return Recovery(outcome=outcome)
        store = self.state_store
        if store is not None:
            if state_data is not None:
                load_state(store, state_data, self.run_id)
            self.state_version = store.version
        for event in events:
            inner.publish(event)
        return Recovery(state=state)


def checked_sent(run_id: str, tick: Tick) -> str:
    """The record of ``tick``, one a caller sends to run ``run_id`` (rule 1).

    :raises ContextSerdeError: naming the value and its path.
    """
    try:
        return checked_tick_record(tick)
    except ContextSerdeError as exc:
        event = getattr(tick, "event", None)
        name = type(event).__name__ if isinstance(event, Event) else type(tick).__name__
        # The cause kept, as in check_start_event.
        raise ContextSerdeError(
            f"run {run_id!r} cannot record {name}: {exc}; nothing was sent (a durable run "
            "records what it is sent as JSON: finite numbers, text, string keys, values "
            "that fit the fields' types)"
        ) from exc


class JournalingInternal(InternalRunAdapterDecorator):
    """The driver's side of a journaled run: each batch committed before its
    commands run, each event noted, the run's end recorded.

    :param wall_clock: True: runs keep time by the wall clock, so recorded
        deadlines mean the same in the next process.  False: by the inner
        runtime's clock (a simulator's).
    """

    __slots__ = ("_journal", "_wall_clock")

    def __init__(
        self, inner: InternalRunAdapter, journal: RunJournal, *, wall_clock: bool = True
    ) -> None:
        super().__init__(inner)
        self._journal = journal
        self._wall_clock = wall_clock

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        journal = self._journal
        journal.state_store = store
        try:
            recovery = await journal.recover(self.inner, workflow, start_event)
        except BaseException as exc:
            journal.recovery_failed(exc)
            raise
        journal.mark_recovered()
        return recovery

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        try:
            await self._journal.commit(ticks, commands)
        except DurabilityError as exc:
            self._journal.failed(exc)
            raise
        await self.inner.on_ticks(ticks, commands)

    def publish(self, event: Any) -> None:
        self._journal.record_event(event)
        self.inner.publish(event)

    def now(self) -> float:
        return time.time() if self._wall_clock else self.inner.now()

    async def sleep_until(self, deadline: float) -> None:
        if not self._wall_clock:
            await self.inner.sleep_until(deadline)
            return
        # The wall clock may be set back or forward while asleep: look again.
        while (delay := deadline - time.time()) > 0:  # noqa: ASYNC110 - no event to wait for
            await anyio.sleep(delay)

    async def on_end(self, outcome: Outcome, final: bool) -> None:
        await self._journal.end(outcome, final)

    def finish(self, outcome: Outcome) -> None:
        self.inner.finish(self._journal.close(outcome))


class JournalingExternal(ExternalRunAdapterDecorator):
    """The caller's side of a journaled run: what it sends is checked first
    (rule 1) and counted, and ``wait_accepted`` waits for its commit (rule 3)."""

    __slots__ = ("_journal",)

    def __init__(self, inner: ExternalRunAdapter, journal: RunJournal) -> None:
        super().__init__(inner)
        self._journal = journal

    def send_tick(self, tick: Tick) -> None:
        if not is_external(tick):
            self.inner.send_tick(tick)
            return
        journal = self._journal
        journal.check_sent(tick)
        try:
            self.inner.send_tick(tick)
        except BaseException:
            journal.unsent(tick)
            raise
        journal.sent += 1

    async def wait_accepted(self) -> None:
        journal = self._journal
        target = journal.sent
        waited = False
        while journal.waiting(target):
            await journal.next_change().wait()
            waited = True
        journal.check_accepted(target)
        if not waited:
            # Waiting was a checkpoint already; another would let the run's
            # steps go first, before the caller hears that it is recorded.
            await anyio.lowlevel.checkpoint()
