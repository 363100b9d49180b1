"""``DurableRuntime``: every tick is committed to a store before its commands run.

A run's state is the fold of its ticks, so a run whose process died is rebuilt
by replaying its journal, and goes on: the steps whose results were committed
do not run again; the attempts that were executing (or waiting) run again.

The runtime decorates another (``BasicRuntime`` by default): it adds the
journal to the adapters and changes nothing else.  Its clock is the wall clock,
so deadlines recorded by one process mean the same in the next.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ..errors import (
    ContextSerdeError,
    DurabilityError,
    RunLockedError,
    StoreUnavailableError,
)
from ..events import Event, InternalEvent, StopEvent
from ..runtime import (
    BasicRuntime,
    ExternalRunAdapterDecorator,
    InternalRunAdapterDecorator,
    Recovery,
    RuntimeDecorator,
    terminal_event,
)
from ..runtime.vocabulary import Broken, Finish, Publish, is_external
from ..serialization import decode_event, encode_event, encode_tick, encode_value
from ..serialization import type_name as _type_name
from ._journal import (
    check_fingerprint,
    checked_event_record,
    checked_tick_record,
    decode_outcome,
    decode_record,
    default_start,
    encode_outcome,
    encode_record,
    fingerprint,
    load_state,
    replay,
    status_of,
)
from ._store import FINISHED, Owner, RunRecord, Store

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence
    from types import TracebackType

    from ..context import StateStore
    from ..handler import WorkflowHandler
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..runtime.vocabulary import Command, Outcome, Tick
    from ..workflow import Workflow
    from ._catalog import RunCatalog

__all__ = ["Committed", "DurableRuntime", "LiveEvent", "StoredEvent"]

log = logging.getLogger("anyflow.durable")


@attrs.frozen
class StoredEvent:
    """A published event and its position in the run's recorded stream."""

    seq: int
    event: Event
    encoded: Any = attrs.field(default=None, eq=False, repr=False)
    """The event as ``anyflow.serialization.encode_event`` gives it, when at
    hand (what the journal records): a reader need not encode it again."""


@attrs.frozen
class LiveEvent:
    """A published event not yet recorded (from ``DurableRuntime.live_events``):
    its step's tick batch has not committed.  ``seq`` is where it will be
    recorded if that batch commits; if the process dies first it never is, and
    the step, run again, publishes what it publishes then."""

    seq: int
    event: Event
    encoded: Any = attrs.field(default=None, eq=False, repr=False)
    """As ``StoredEvent.encoded``."""


@attrs.frozen
class Committed:
    """From ``DurableRuntime.live_events``: the events up to ``seq`` (given
    before as ``LiveEvent``) are now recorded."""

    seq: int


FEED_KEEP = 1024
"""Recorded events a run's live feed keeps for readers that lag behind (older
ones are read from the store)."""


class _Journal:
    """What the two adapters of one durable run share: its position in the
    store, the events not yet recorded, and the caller's ticks not yet safe."""

    __slots__ = (
        "checked",
        "claimed",
        "committed_next",
        "committed_sent",
        "creating",
        "end_failure",
        "end_recorded",
        "ended",
        "failure",
        "feed",
        "feed_wakeup",
        "final",
        "held",
        "next_event",
        "next_tick",
        "pending",
        "prelogged",
        "record",
        "recovered",
        "run_id",
        "runtime",
        "sent",
        "state_store",
        "state_version",
        "updated",
        "wakeup",
    )

    def __init__(self, runtime: DurableRuntime, run_id: str) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.claimed = False
        self.ended = False
        self.next_tick = 0
        self.next_event = 0
        self.pending: list[tuple[int, str]] = []
        """Events published and not yet recorded (they go with the next commit)."""
        self.prelogged: deque[Any] = deque()
        """Events recorded with a commit, about to be published by its commands."""
        self.committed_next = 0
        """Events with a lower sequence number are recorded."""
        self.feed: list[tuple[int, Event, Any]] = []
        """The events published here, by sequence number, for live readers:
        every one not yet recorded, and at least the last ``FEED_KEEP``
        recorded ones (with the event as encoded for the journal).  Their
        sequence numbers follow each other: a reader finds its place by
        subtraction (a step may write many events before it commits)."""
        self.feed_wakeup: anyio.Event | None = None
        self.held: list[tuple[int, Event, Any, bool]] = []
        """Events kept from the feed (with whether they wait to be recorded):
        those published by the run rather than written to the stream by a
        step (an ``InputRequiredEvent``, a ``StopEvent``: a run released from
        memory publishes an end it never records), and, in order, those after."""
        self.sent = 0
        self.committed_sent = 0
        self.state_store: StateStore[Any] | None = None
        self.state_version = 0
        self.wakeup: anyio.Event | None = None
        self.checked: dict[int, tuple[Tick, str]] = {}
        """Records of the caller's ticks, made when they were sent (by ``id``)."""
        self.recovered = False
        """Set once the run is claimed and its record read."""
        self.failure: DurabilityError | None = None
        """Why the run could not be recorded, if it stopped for that."""
        self.creating: tuple[str, str] | None = None
        """A new run's workflow and fingerprint, until its first batch
        creates it in the store (one transaction: ``Store.create``)."""
        self.final: tuple[list[tuple[int, str]], str | None, int, int] | None = None
        """The batch that ended the run (its tick records, state snapshot and
        version, and how many of its ticks came from the caller), written
        with the run's end in ``end`` (one transaction: ``Store.append_and_finish``)."""
        self.end_recorded = False
        """Set once the run's end is recorded: every event of it is."""
        self.end_failure: DurabilityError | None = None
        """Why the batch that ended the run could not be recorded with its end."""
        self.record: RunRecord | None = None
        """The run's row as this execution created or claimed it (while it
        holds the run, only it writes the row), and ``updated`` the time of
        its latest write since, if any."""
        self.updated: float | None = None

    def _notify(self) -> None:
        if self.wakeup is not None:
            self.wakeup.set()
            self.wakeup = None

    def failed(self, error: DurabilityError) -> None:
        """The run cannot be recorded: tell the callers waiting for a commit
        now, not once the run has ended (which may wait on the store again)."""
        self.failure = error
        self._notify()

    def next_change(self) -> anyio.Event:
        """Set at the next commit (or the end)."""
        if self.wakeup is None:
            self.wakeup = anyio.Event()
        return self.wakeup

    def feed_change(self) -> anyio.Event:
        """Set when the feed changes: an event published, a commit, the end."""
        if self.feed_wakeup is None:
            self.feed_wakeup = anyio.Event()
        return self.feed_wakeup

    def _feed_notify(self) -> None:
        if self.feed_wakeup is not None:
            self.feed_wakeup.set()
            self.feed_wakeup = None

    def _to_feed(self, seq: int, event: Event, encoded: Any, recorded_first: bool) -> None:
        if self.held or recorded_first:
            self.held.append((seq, event, encoded, recorded_first))
        else:
            self.feed.append((seq, event, encoded))

    def _committed(self, upto: int) -> None:
        self.committed_next = upto
        feed = self.feed
        held = self.held
        if held:
            released = 0
            for seq, event, encoded, recorded_first in held:
                if recorded_first and seq >= upto:
                    break
                feed.append((seq, event, encoded))
                released += 1
            del held[:released]
        recorded = upto - feed[0][0] if feed else 0
        if recorded > 2 * FEED_KEEP:  # trimmed in bulk: a list's front is costly to pop
            del feed[: recorded - FEED_KEEP]
        self._feed_notify()

    # Before the run.

    async def recover(
        self,
        inner: InternalRunAdapter,
        workflow: Workflow,
        start_event: Event | None,
        state_store: StateStore[Any],
    ) -> Recovery | None:
        runtime = self.runtime
        store = runtime.store
        self.state_store = state_store
        name = _type_name(type(workflow))
        current = fingerprint(workflow)
        if await store.get_run(self.run_id) is None:
            # A new run: the store creates it with its first batch (``commit``),
            # so it is never recorded without its start event.
            self.creating = (name, _canonical(current))
            if start_event is None:
                start_event = default_start(workflow, self.run_id)
            return Recovery(start_event=start_event)
        now = time.time()
        stored = await store.claim(
            self.run_id, name, _canonical(current), runtime.owner, now, now + runtime.lease
        )
        self.claimed = stored.record.status not in FINISHED
        self.record = stored.record
        self._notify()
        try:
            if stored.created:  # deleted after the read above: a new run after all
                if start_event is None:
                    start_event = default_start(workflow, self.run_id)
                return Recovery(start_event=start_event)
            check_fingerprint(self.run_id, workflow, json.loads(stored.fingerprint))
            history = await store.read_events(self.run_id)
            events = []
            for position, (seq, text) in enumerate(history):
                if seq != position:
                    raise DurabilityError(
                        f"event record {position} of run {self.run_id!r} is missing (the "
                        f"next one is {seq}); nothing was changed"
                    )
                events.append(_decode_event(text, self.run_id, seq))
            self.next_event = self.committed_next = len(events)
            if stored.outcome is not None:
                outcome = decode_outcome(stored.outcome, self.run_id)
                for event in events:
                    inner.publish(event)
                return Recovery(outcome=outcome)
            if not stored.ticks:
                # Claimed, then the process died before the first commit.
                if start_event is None:
                    start_event = default_start(workflow, self.run_id)
                return Recovery(start_event=start_event)
            state = replay(self.run_id, workflow._spec, stored.ticks)
            self.next_tick = len(stored.ticks)
            if state.outcome is not None:
                # The run's last tick was recorded and its end was not: the
                # process died in between.  Record the end now.
                terminal = terminal_event(state.outcome)
                await store.finish(
                    self.run_id,
                    runtime.owner,
                    status_of(state.outcome),
                    encode_record(encode_outcome(state.outcome)),
                    [(self.next_event, self._encode_event(terminal)[1])],
                    time.time(),
                )
                self.next_event = self.committed_next = self.next_event + 1
                self.claimed = False
                for event in (*events, terminal):
                    inner.publish(event)
                return Recovery(outcome=state.outcome)
            if stored.state is not None:
                data = decode_record(stored.state, self.run_id, "state", 0)
                load_state(state_store, data, self.run_id)
            self.state_version = state_store.version
            for event in events:
                inner.publish(event)
            return Recovery(state=state)
        except BaseException:
            if self.claimed:
                self.claimed = False
                with anyio.CancelScope(shield=True):
                    await store.release(self.run_id, runtime.owner)
            raise

    # While the run goes on.

    def record_event(self, event: Any) -> None:
        if self.prelogged and self.prelogged[0] is event:
            self.prelogged.popleft()
        elif not isinstance(event, InternalEvent) and not self.ended:
            seq = self.next_event
            encoded, text = self._encode_event(event)
            self.pending.append((seq, text))
            self.next_event = seq + 1
            # Live readers see it now, not when its step's batch commits.
            self._to_feed(seq, event, encoded, isinstance(event, StopEvent))
            self._feed_notify()

    def _encode_event(self, event: Any) -> tuple[Any, str]:
        """The event encoded, and as the record the journal writes."""
        try:
            encoded = encode_event(event)
            return encoded, encode_record(encoded)
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record the event {type(event).__name__}: {exc} "
                "(a durable run's events must be JSON-safe)"
            ) from exc

    async def commit(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        runtime = self.runtime
        records: list[tuple[int, str]] = []
        checked = self.checked
        try:
            for offset, tick in enumerate(ticks):
                made = checked.pop(id(tick), None) if checked else None
                text = made[1] if made is not None and made[0] is tick else None
                if text is None:
                    text = encode_record(encode_tick(tick))
                records.append((self.next_tick + offset, text))
        except ContextSerdeError as exc:
            raise DurabilityError(
                f"run {self.run_id!r} cannot record {type(tick).__name__}: {exc} (a durable "
                "run's events must be JSON-safe)"
            ) from exc
        events = self.pending
        published = [c.event for c in commands if type(c) is Publish]
        for event in published:
            if not isinstance(event, InternalEvent):
                seq = self.next_event
                encoded, text = self._encode_event(event)
                events.append((seq, text))
                self.next_event = seq + 1
                self.prelogged.append(event)
                self._to_feed(seq, event, encoded, True)
        state = None
        store = self.state_store
        if store is not None and store.version != self.state_version:
            try:
                state = encode_record(encode_value(store.to_dict(), "$.state"))
            except ContextSerdeError as exc:
                raise DurabilityError(
                    f"run {self.run_id!r} cannot record its state: {exc} (a durable run's "
                    "state must be JSON-safe)"
                ) from exc
            version = store.version
        else:
            version = self.state_version
        sent = sum(1 for tick in ticks if is_external(tick))
        if self.creating is None and any(type(c) is Finish for c in commands):
            # The batch that ends the run is recorded with its end, in one
            # transaction (``end``), once its steps have stopped.  Until then
            # its consequences stay in this process: the events it publishes
            # are held from live readers until recorded, and a crash before
            # that resumes the run from before this batch.
            self.final = (records, state, version, sent)
            self.next_tick += len(records)
            return  # self.pending (events) goes on collecting, in order
        now = time.time()
        self.pending = []
        upto = self.next_event
        if self.creating is not None:
            workflow, fingerprint_text = self.creating
            await runtime.store.create(
                self.run_id,
                workflow,
                fingerprint_text,
                runtime.owner,
                records,
                events,
                state,
                now,
                now + runtime.lease,
            )
            self.creating = None
            self.claimed = True
            self.record = RunRecord.from_row(self.run_id, workflow, "running", now, now)
        else:
            await runtime.store.append(
                self.run_id, runtime.owner, records, events, state, now, now + runtime.lease
            )
            self.wrote(now)
        self._committed(upto)
        self.state_version = version
        self.next_tick += len(records)
        self.committed_sent += sent
        self._notify()

    def wrote(self, now: float) -> None:
        """This execution wrote the run's row at ``now`` (its ``updated_at``)."""
        if self.updated is None or now > self.updated:
            self.updated = now

    def current_record(self) -> RunRecord | None:
        """The run's row as the store has it, while this execution holds the
        run (None otherwise: ask the store)."""
        record = self.record
        if not self.claimed or record is None:
            return None
        if self.updated is not None:
            updated_at = datetime.fromtimestamp(self.updated, timezone.utc)
            if updated_at > record.updated_at:
                return attrs.evolve(record, updated_at=updated_at)
        return record

    async def end(self, outcome: Outcome, final: bool) -> None:
        if not self.claimed:
            return
        self.claimed = False
        store = self.runtime.store
        owner = self.runtime.owner
        last, self.final = self.final, None
        try:
            if final:
                events, self.pending = self.pending, []
                upto = self.next_event
                if last is not None:
                    records, state, version, sent = last
                    await store.append_and_finish(
                        self.run_id,
                        owner,
                        records,
                        events,
                        state,
                        status_of(outcome),
                        encode_record(encode_outcome(outcome)),
                        time.time(),
                    )
                    self.state_version = version
                    self.committed_sent += sent
                else:
                    await store.finish(
                        self.run_id,
                        owner,
                        status_of(outcome),
                        encode_record(encode_outcome(outcome)),
                        events,
                        time.time(),
                    )
                self.end_recorded = True
                self._committed(upto)
            else:
                # A batch that ended the run and was not recorded is dropped:
                # the run resumes from before it.
                await store.release(self.run_id, owner)
        except DurabilityError as exc:
            if final and last is not None:
                # Its last batch is not recorded: the run has not ended as far
                # as the store knows, and its handler says so (``finish``).
                self.end_failure = exc
                self.failed(exc)
            if not isinstance(exc, StoreUnavailableError):
                log.exception("run %r: its end could not be recorded", self.run_id)
                return
            # The run is still recorded as unfinished: it resumes (and, if its
            # last tick was recorded, records its end) once the store works.
            log.warning("run %r: its end could not be recorded: %s", self.run_id, exc)
        except Exception:
            log.exception("run %r: its end could not be recorded", self.run_id)

    def close(self) -> None:
        self.ended = True
        self.prelogged.clear()
        self.runtime._active.pop(self.run_id, None)
        if self.end_recorded:
            self.runtime._ended.keep(self.run_id, self.feed)
        self._notify()
        self._feed_notify()


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _sent_name(tick: Tick) -> str:
    event = getattr(tick, "event", None)
    return type(event).__name__ if isinstance(event, Event) else type(tick).__name__


def _decode_event(text: str, run_id: str, seq: int) -> Event:
    return _stored_event(text, run_id, seq).event


def _stored_event(text: str, run_id: str, seq: int) -> StoredEvent:
    data = decode_record(text, run_id, "event", seq)
    try:
        return StoredEvent(seq, decode_event(data, f"$.events[{seq}]"), data)
    except ContextSerdeError as exc:
        raise DurabilityError(f"event record {seq} of run {run_id!r}: {exc}") from exc


class _Internal(InternalRunAdapterDecorator):
    __slots__ = ("_journal", "_wall_clock")

    def __init__(self, inner: InternalRunAdapter, journal: _Journal, wall_clock: bool) -> None:
        super().__init__(inner)
        self._journal = journal
        self._wall_clock = wall_clock

    async def recover(
        self, workflow: Workflow, start_event: Event | None, store: StateStore[Any]
    ) -> Recovery | None:
        try:
            recovery = await self._journal.recover(self.inner, workflow, start_event, store)
        except DurabilityError as exc:
            self._journal.failed(exc)
            raise
        self._journal.recovered = True
        self._journal._feed_notify()
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
        journal = self._journal
        journal.close()
        failure = journal.end_failure
        if failure is not None:
            # The batch that ended the run could not be recorded: as with any
            # batch that cannot be, the run stops with the store's error (it
            # stays recorded as unfinished, and resumes from before that batch).
            outcome = Broken(None, str(failure), failure)
        self.inner.finish(outcome)


class _External(ExternalRunAdapterDecorator):
    __slots__ = ("_journal",)

    def __init__(self, inner: ExternalRunAdapter, journal: _Journal) -> None:
        super().__init__(inner)
        self._journal = journal

    def send_tick(self, tick: Tick) -> None:
        if not is_external(tick):
            self.inner.send_tick(tick)
            return
        journal = self._journal
        # Refused here, in the sender, what the journal could not record: once
        # sent, a tick that cannot be committed would stop the run.
        try:
            text = checked_tick_record(tick)
        except ContextSerdeError as exc:
            # from None: the message holds the inner error whole
            raise ContextSerdeError(
                f"run {journal.run_id!r} cannot record {_sent_name(tick)}: {exc}; nothing "
                "was sent (a durable run records what it is sent as JSON: finite numbers, "
                "text, string keys, values that fit the fields' types)"
            ) from None
        journal.checked[id(tick)] = (tick, text)
        try:
            self.inner.send_tick(tick)
        except BaseException:
            journal.checked.pop(id(tick), None)
            raise
        journal.sent += 1

    async def wait_accepted(self) -> None:
        journal = self._journal
        target = journal.sent
        waited = False
        while (
            not journal.ended
            and journal.failure is None
            and (not journal.claimed or journal.committed_sent < target)
        ):
            await journal.next_change().wait()
            waited = True
        failure = journal.failure
        if failure is not None and (
            not journal.recovered or journal.creating is not None or journal.committed_sent < target
        ):
            # The run stopped before recording itself, or what was sent.
            error = (
                StoreUnavailableError
                if isinstance(failure, StoreUnavailableError)
                else DurabilityError
            )
            raise error(f"run {journal.run_id!r} is not recorded: {failure}") from failure
        if not waited:
            # Waiting was a checkpoint already; another would let the run's
            # steps go first, before the caller hears that it is recorded.
            await anyio.lowlevel.checkpoint()


class DurableRuntime(RuntimeDecorator):
    """Hosts runs whose every tick is recorded in ``store`` before it takes effect.

    ``wf.run(run_id="order-42", runtime=durable, **fields)`` starts the run
    ``order-42``; the same call for a recorded, unfinished run (after a crash,
    in a new process) resumes it, and for a finished run returns its recorded
    outcome.  The fields may be left out to resume only.

    :param store: a ``Store``, or a path to a SQLite file (the runtime then
        owns the store and closes it when its block ends).
    :param inner: the runtime that executes the runs (``BasicRuntime()`` by default).
    :param lease: seconds a run stays claimed by this process without news from
        it; the lease is renewed every third of that while the process lives.
        Another host takes over a run only once its lease has expired; a dead
        process on the same host is detected at once.
    :param poll_interval: how often ``events()`` looks for new records of a run
        executed by another process.
    :param wall_clock: True (the default): runs keep time by the wall clock,
        so recorded deadlines mean the same in the next process.  False: by
        the inner runtime's clock (a simulator's virtual clock, which goes on
        across the crashes it simulates).
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        inner: Runtime | None = None,
        *,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        wall_clock: bool = True,
    ) -> None:
        super().__init__(inner if inner is not None else BasicRuntime())
        if isinstance(store, Store):
            self.store = store
            self._owns_store = False
        else:
            from ._sqlite import SqliteStore

            self.store = SqliteStore(store)
            self._owns_store = True
        if lease <= 0 or poll_interval <= 0:
            raise ValueError("lease and poll_interval are seconds > 0")
        self.lease = lease
        self.poll_interval = poll_interval
        self.wall_clock = wall_clock
        self.owner = Owner.here()
        self._active: dict[str, _Journal] = {}
        self._ended = _EndedRuns()
        self._entered = False

    @property
    def keeps_runs(self) -> bool:
        return True

    def check_event(self, event: Event) -> None:
        """Refuse now a start event the journal could not record (or read back).

        :raises ContextSerdeError: naming the value and its path.
        """
        try:
            checked_event_record(event)
        except ContextSerdeError as exc:
            # from None: the message holds the inner error whole
            raise ContextSerdeError(
                f"a durable run cannot record the start event {type(event).__name__}: {exc}; "
                "nothing was started (a durable run records its events as JSON: finite "
                "numbers, text, string keys, values that fit the fields' types)"
            ) from None
        self.inner.check_event(event)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        if not self._entered:
            raise RuntimeError(
                "this DurableRuntime is not running: start runs inside "
                "`async with DurableRuntime(store) as runtime:`"
            )
        if run_id in self._active:
            raise RunLockedError(
                f"run {run_id!r} is already running in this runtime: use the handler "
                "that started it (a run is executed once at a time)"
            )
        internal, external = self.inner.open_run(run_id)
        journal = self._active[run_id] = _Journal(self, run_id)
        return _Internal(internal, journal, self.wall_clock), _External(external, journal)

    async def __aenter__(self) -> DurableRuntime:
        await self.inner.__aenter__()
        self._entered = True
        self.inner.spawn(self._renew_leases, name="anyflow durable leases")
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
            if self._owns_store:
                with anyio.CancelScope(shield=True):
                    await self.store.aclose()

    async def _renew_leases(self) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            for journal in list(self._active.values()):
                if journal.claimed and not journal.ended:
                    now = time.time()
                    try:
                        await self.store.append(
                            journal.run_id, self.owner, (), (), None, now, now + self.lease
                        )
                        journal.wrote(now)
                    except DurabilityError as exc:
                        if not journal.claimed or journal.ended:
                            # The run ended (or was let go) while this renewal
                            # waited for the store: its lease is not needed,
                            # and a store refuses to renew a finished run.
                            continue
                        log.warning(
                            "run %r: its lease could not be renewed: %s", journal.run_id, exc
                        )

    # Reading the store.

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first (``workflow`` is ``module:qualname``)."""
        return await self.store.list_runs(workflow=workflow, status=status)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run.  A run this
        runtime executes (and so holds: nobody else writes its row) is
        answered from what the runtime wrote, without asking the store."""
        journal = self._active.get(run_id)
        if journal is not None:
            record = journal.current_record()
            if record is not None:
                return record
        return await self.store.get_run(run_id)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The run's recorded events with a sequence number above ``after``."""
        kept = self._ended.events(run_id, after, limit)
        if kept is not None:
            return kept
        return [
            _stored_event(text, run_id, seq)
            for seq, text in await self.store.read_events(run_id, after, limit=limit)
        ]

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run's records (see ``Store.delete``)."""
        self._ended.forget(run_id)
        await self.store.delete(run_id)

    @property
    def resumes_recorded_runs(self) -> bool:
        """True: any process may resume a recorded unfinished run (the lease
        keeps two from executing it at once)."""
        return True

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        """A handler on the recorded unfinished run ``run_id``: it resumes here,
        in ``runtime`` (this one, or a decorator of it)."""
        return workflow.run(run_id=run_id, runtime=runtime if runtime is not None else self)

    def add_workflow(self, workflow: Workflow) -> None:
        """Nothing to do: a ``DurableRuntime`` executes only the runs its
        callers start or resume, with the workflow they give (``RunCatalog``
        asks it of every runtime, for those that are handed runs)."""

    def events(self, run_id: str, after: int = -1) -> _EventReader:
        """The run's recorded events with a sequence number above ``after``, as
        ``StoredEvent``s, following the run until its last event.

        A consumer that reconnects passes the last ``seq`` it got, and goes on
        without a gap or a duplicate.  Events appear when they are committed
        (with the run's next tick batch): for a live view of a run of this
        process use ``handler.stream_events()``.

        :raises DurabilityError: if there is no such run.
        """
        return _EventReader(self, run_id, after)

    def live_events(self, run_id: str, after: int | None = -1) -> LiveEventReader:
        """The run's events after the recorded position ``after`` (None: from
        now on), as they are published: following the run to its end.

        While the run executes in this process, an event a step writes to the
        stream comes at once, as a ``LiveEvent`` (not yet recorded); a
        ``Committed`` follows once its step's batch is recorded (or the event
        comes again as a ``StoredEvent`` to a reader that lagged behind).
        Events already recorded, and those of a run executed elsewhere, come
        as ``StoredEvent``s.  The ``StoredEvent``s and ``Committed``s are the
        recorded stream with no gap and no duplicate: a reader that passes the
        last ``seq`` of them as ``after`` goes on where it left.  A
        ``LiveEvent`` whose batch was never recorded (its process died) is
        not in that stream; the step, run again, publishes its events again.

        :raises DurabilityError: if there is no such run.
        """
        return LiveEventReader(self, run_id, after)


class _EndedRuns:
    """The events of the runs that ended in this runtime lately, as they were
    recorded (the event and its encoding): reading a run's events just after
    it ended (a client that follows it, the server's replay of it) needs
    neither the store nor decoding.  A finished run's records never change,
    but for a purge (``delete_run``).  Bounded by ``ENDED_KEEP`` events."""

    __slots__ = ("_events", "_runs")

    def __init__(self) -> None:
        self._runs: dict[str, list[tuple[int, Event, Any]]] = {}
        self._events = 0

    def keep(self, run_id: str, feed: list[tuple[int, Event, Any]]) -> None:
        if not feed or len(feed) > ENDED_KEEP // 8:
            return
        self.forget(run_id)
        self._runs[run_id] = feed
        self._events += len(feed)
        while self._events > ENDED_KEEP:
            self.forget(next(iter(self._runs)))

    def forget(self, run_id: str) -> None:
        feed = self._runs.pop(run_id, None)
        if feed is not None:
            self._events -= len(feed)

    def events(self, run_id: str, after: int, limit: int | None) -> list[StoredEvent] | None:
        """The events after ``after``, or None if they are not all kept."""
        feed = self._runs.get(run_id)
        if feed is None or after + 1 < feed[0][0]:
            return None
        entries = feed[after + 1 - feed[0][0] :]
        if limit is not None:
            entries = entries[:limit]
        return [StoredEvent(seq, event, encoded) for seq, event, encoded in entries]


ENDED_KEEP = 8192
"""Events ``DurableRuntime`` keeps of the runs that ended in it lately."""


LiveItem = StoredEvent | LiveEvent | Committed
"""What ``DurableRuntime.live_events`` gives."""


class LiveEventReader:
    """``DurableRuntime.live_events()``: a plain async iterator, and
    ``next_batch()`` for a consumer that takes what is ready at once."""

    __slots__ = (
        "_buffer",
        "_committed",
        "_done",
        "_journal",
        "_now",
        "_run_id",
        "_runtime",
        "_seen",
        "_sent",
    )

    def __init__(self, runtime: DurableRuntime, run_id: str, after: int | None) -> None:
        self._runtime = runtime
        self._run_id = run_id
        self._now = after is None
        self._committed = -1 if after is None else after
        """The last recorded position given (as a ``StoredEvent`` or ``Committed``)."""
        self._sent = self._committed
        """The last position given, recorded or not."""
        self._journal: _Journal | None = None
        """The execution whose unrecorded events were given, if any."""
        self._seen: _Journal | None = None
        """The last execution of the run this reader saw in this process."""
        self._buffer: deque[LiveItem] = deque()
        self._done = False

    def __aiter__(self) -> LiveEventReader:
        return self

    async def __anext__(self) -> LiveItem:
        if not self._buffer:
            await self._fill()
            if not self._buffer:
                raise StopAsyncIteration
        return self._buffer.popleft()

    async def next_batch(self) -> list[LiveItem]:
        """What is ready (at least one item), or ``[]`` at the end."""
        if not self._buffer:
            await self._fill()
        batch = list(self._buffer)
        self._buffer.clear()
        return batch

    @property
    def done(self) -> bool:
        """Whether everything was given: the next batch is ``[]``."""
        return self._done and not self._buffer

    def _confirm(self, upto: int) -> None:
        if upto > self._committed:
            self._committed = upto
            self._buffer.append(Committed(upto))

    async def _fill(self) -> None:
        runtime = self._runtime
        run_id = self._run_id
        buffer = self._buffer
        while not buffer and not self._done:
            journal = runtime._active.get(run_id)
            followed = self._journal
            if followed is not None and journal is not followed:
                self._journal = None
                if not followed.end_recorded:
                    # The execution it followed ended: what it recorded stands; the
                    # rest was never recorded, and comes again if the run goes on.
                    self._confirm(min(self._sent, followed.committed_next - 1))
                    self._sent = self._committed
                    continue
            if journal is None and self._seen is not None and self._seen.end_recorded:
                # The run ended here and recorded its end, so all its events
                # are recorded: the rest is in that execution's feed, or else
                # in the store.
                seen = self._seen
                feed = seen.feed
                base = feed[0][0] if feed else seen.next_event
                if self._sent + 1 >= base:
                    self._take(seen, feed[self._sent + 1 - base : seen.committed_next - base])
                    self._done = True
                    continue
            if journal is not None:
                self._seen = journal
                if not journal.recovered:
                    await journal.feed_change().wait()
                    continue
                if self._now:
                    self._now = False
                    self._sent = journal.next_event - 1
                    self._committed = min(self._sent, journal.committed_next - 1)
                    if self._sent > self._committed:
                        self._journal = journal
                feed = journal.feed
                base = feed[0][0] if feed else journal.next_event
                if self._sent + 1 >= base:
                    self._take(journal, feed[self._sent + 1 - base :])
                    if not buffer:
                        await journal.feed_change().wait()
                    continue
                # Behind the feed: what it missed is recorded, in the store.
            await self._read_store(journal)

    def _take(self, journal: _Journal, entries: Any) -> None:
        buffer = self._buffer
        recorded = journal.committed_next
        # What it gave live and is recorded since: said before what follows.
        self._confirm(min(self._sent, recorded - 1))
        for seq, event, encoded in entries:
            if seq < recorded:
                buffer.append(StoredEvent(seq, event, encoded))
                self._committed = seq
            else:
                buffer.append(LiveEvent(seq, event, encoded))
                self._journal = journal
            self._sent = seq
        if self._sent == self._committed:
            self._journal = None

    async def _read_store(self, journal: _Journal | None) -> None:
        runtime = self._runtime
        store = runtime.store
        run_id = self._run_id
        record = await store.get_run(run_id)
        if record is None:
            if journal is None:
                raise DurabilityError(f"no run {run_id!r} is recorded in this store")
            await journal.feed_change().wait()  # a run of ours, not recorded yet
            return
        # Read after looking at the status: a finished run has all its events
        # recorded, so an empty read then means the end.
        records = await store.read_events(run_id, -1 if self._now else self._sent)
        if self._now:
            self._now = False
            self._sent = self._committed = records[-1][0] if records else -1
            records = []
        for seq, text in records:
            self._buffer.append(_stored_event(text, run_id, seq))
            self._sent = self._committed = seq
        if record.status in FINISHED:
            self._done = True  # read after its status: that was all of it
            return
        if self._buffer:
            return
        elif journal is not None:
            await journal.feed_change().wait()
        else:  # executed by another process (or not at all, for now)
            await anyio.sleep(runtime.poll_interval)


class _EventReader:
    """``DurableRuntime.events()``: a plain async iterator (not a generator), so
    a consumer may break out of its loop without leaving anything to finalize."""

    __slots__ = ("_after", "_buffer", "_done", "_run_id", "_runtime")

    def __init__(self, runtime: DurableRuntime, run_id: str, after: int) -> None:
        self._runtime = runtime
        self._run_id = run_id
        self._after = after
        self._buffer: deque[StoredEvent] = deque()
        self._done = False

    def __aiter__(self) -> _EventReader:
        return self

    async def __anext__(self) -> StoredEvent:
        runtime = self._runtime
        store = runtime.store
        while not self._buffer:
            if self._done:
                raise StopAsyncIteration
            journal = runtime._active.get(self._run_id)
            change = journal.next_change() if journal is not None else None
            record = await store.get_run(self._run_id)
            if record is None:
                if change is None:
                    raise DurabilityError(f"no run {self._run_id!r} is recorded in this store")
                await change.wait()  # a run of ours, not recorded yet
                continue
            # Read after looking at the status: a finished run has all its
            # events recorded, so an empty read then means the end.
            for seq, text in await store.read_events(self._run_id, self._after):
                self._buffer.append(_stored_event(text, self._run_id, seq))
                self._after = seq
            if self._buffer:
                break
            if record.status in FINISHED:
                self._done = True
            elif change is not None:
                await change.wait()
            else:
                await anyio.sleep(runtime.poll_interval)
        return self._buffer.popleft()


if TYPE_CHECKING:

    def _is_a_run_catalog(runtime: DurableRuntime) -> RunCatalog:
        return runtime  # mypy checks that DurableRuntime satisfies RunCatalog
