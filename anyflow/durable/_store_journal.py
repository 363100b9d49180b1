"""``StoreJournal``: the journal of one durable run, kept in a ``Store``.

The bookkeeping every journaling runtime shares is ``journaling.RunJournal``;
this is what a ``Store`` adds: the run's lease (claimed at recovery, renewed by
``DurableRuntime``), its tick and event positions, the two batches that go
with more (a new run's first creates it, the one that ends the run is written
with its end), and the live feed of the run's events for readers in this
process (``_reading.LiveEventReader``).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ..errors import ContextSerdeError, DurabilityError, RunLockedError, StoreUnavailableError
from ..events import Event, StopEvent
from ..runtime import Recovery
from ..runtime.vocabulary import Broken, Finish, run_spec
from ..serialization import encode_tick
from ..serialization import type_name as _type_name
from ._journal import (
    check_fingerprint,
    decode_outcome,
    decode_record,
    default_start,
    encode_outcome,
    encode_record,
    fingerprint,
    replay,
    status_of,
)
from ._reading import decode_stored_event
from ._store import FINISHED, RunRecord
from .journaling import RunJournal, checked_sent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..runtime import InternalRunAdapter
    from ..runtime.vocabulary import Command, Outcome, RunSpec, Tick
    from ..workflow import Workflow
    from ._runtime import DurableRuntime

__all__ = ["FEED_KEEP", "StoreJournal"]

log = logging.getLogger("anyflow.durable")

FEED_KEEP = 1024
"""Recorded events a run's live feed keeps for readers that lag behind (older
ones are read from the store)."""


class StoreJournal(RunJournal):
    """What the two adapters of one durable run share: its position in the
    store, the events not yet recorded, and the caller's ticks not yet safe."""

    __slots__ = (
        "checked",
        "claimed",
        "committed_next",
        "creating",
        "end_failure",
        "end_recorded",
        "failure",
        "feed",
        "feed_wakeup",
        "final",
        "held",
        "new",
        "next_event",
        "next_tick",
        "pending",
        "record",
        "runtime",
        "updated",
    )

    def __init__(self, runtime: DurableRuntime, run_id: str, *, new: bool = False) -> None:
        super().__init__(run_id)
        self.runtime = runtime
        self.new = new
        """The caller said the run is new (``DurableRuntime.starting_new``):
        it is not looked up, and its first batch creates it or is refused."""
        self.claimed = False
        """Whether this execution holds the run's lease."""
        self.next_tick = 0
        self.next_event = 0
        self.pending: list[tuple[int, str]] = []
        """Events published and not yet recorded (they go with the next commit)."""
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
        self.checked: dict[int, tuple[Tick, str]] = {}
        """Records of the caller's ticks, made when they were sent (by ``id``)."""
        self.failure: DurabilityError | None = None
        """Why the run could not be recorded, if it stopped for that."""
        self.creating: tuple[str, str] | None = None
        """A new run's workflow and fingerprint, until its first batch
        creates it in the store (one transaction: ``Store.create``)."""
        self.final: tuple[list[tuple[int, str]], str | None, int | None, int] | None = None
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

    # The caller's side.

    def holds(self) -> bool:
        return self.claimed

    def failed(self, error: DurabilityError) -> None:
        """The run cannot be recorded: tell the callers waiting for a commit
        now, not once the run has ended (which may wait on the store again)."""
        self.failure = error
        self.notify()

    def waiting(self, target: int) -> bool:
        return self.failure is None and super().waiting(target)

    def check_accepted(self, target: int) -> None:
        failure = self.failure
        if failure is not None and (
            not self.recovered or self.creating is not None or self.committed_sent < target
        ):
            # The run stopped before recording itself, or what was sent.
            error: type[DurabilityError] = DurabilityError
            for kind in (StoreUnavailableError, RunLockedError):  # what the caller may act on
                if isinstance(failure, kind):
                    error = kind
            raise error(f"run {self.run_id!r} is not recorded: {failure}") from failure

    def check_sent(self, tick: Tick) -> None:
        # The record made to check it is the one the commit writes.
        self.checked[id(tick)] = (tick, checked_sent(self.run_id, tick))

    def unsent(self, tick: Tick) -> None:
        self.checked.pop(id(tick), None)

    # The live feed.

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

    def mark_recovered(self) -> None:
        super().mark_recovered()
        self._feed_notify()

    # Before the run.

    async def recover(
        self, inner: InternalRunAdapter, workflow: Workflow, start_event: Event | None
    ) -> Recovery | None:
        runtime = self.runtime
        store = runtime.store
        name, canonical = _identity(workflow)
        if self.new or await store.get_run(self.run_id) is None:
            # A new run: the store creates it with its first batch (``commit``),
            # so it is never recorded without its start event.  A run of this
            # id recorded meanwhile makes that batch fail (``Store.create``).
            self.creating = (name, canonical)
            if start_event is None:
                start_event = default_start(workflow, self.run_id)
            return Recovery(start_event=start_event)
        now = time.time()
        stored = await store.claim(
            self.run_id, name, canonical, runtime.owner, now, now + runtime.lease
        )
        self.claimed = stored.record.status not in FINISHED
        self.record = stored.record
        self.notify()
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
                events.append(decode_stored_event(text, self.run_id, seq).event)
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
            state = replay(self.run_id, run_spec(workflow), stored.ticks)
            self.next_tick = len(stored.ticks)
            data = None
            if stored.state is not None:
                data = decode_record(stored.state, self.run_id, "state", 0)
            return await self.resume(inner, state, events, data)
        except BaseException:
            if self.claimed:
                self.claimed = False
                with anyio.CancelScope(shield=True):
                    await store.release(self.run_id, runtime.owner)
            raise

    async def record_end(self, outcome: Outcome, terminal: Event) -> None:
        runtime = self.runtime
        await runtime.store.finish(
            self.run_id,
            runtime.owner,
            status_of(outcome),
            encode_record(encode_outcome(outcome)),
            [(self.next_event, self._event_record(terminal)[1])],
            time.time(),
        )
        self.next_event = self.committed_next = self.next_event + 1
        self.claimed = False

    # While the run goes on.

    def pend(self, event: Event, published: bool) -> None:
        seq = self.next_event
        encoded, text = self._event_record(event)
        self.pending.append((seq, text))
        self.next_event = seq + 1
        if published:
            self._to_feed(seq, event, encoded, True)
        else:
            # Live readers see it now, not when its step's batch commits.
            self._to_feed(seq, event, encoded, isinstance(event, StopEvent))
            self._feed_notify()

    def _event_record(self, event: Event) -> tuple[Any, str]:
        """The event encoded, and as the record the journal writes."""
        encoded = self.encode_event(event)
        try:
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
        self.take_published(commands)
        snapshot = self.snapshot()
        state, version = (encode_record(snapshot[0]), snapshot[1]) if snapshot else (None, None)
        sent = self.count_sent(ticks)
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
        self.next_tick += len(records)
        self.committed(sent, version)

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

    # The end.

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
                    self.committed(sent, version)
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
                # as the store knows, and its handler says so (``close``).
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

    def close(self, outcome: Outcome) -> Outcome:
        outcome = super().close(outcome)
        if self.runtime._active.get(self.run_id) is self:
            del self.runtime._active[self.run_id]
        if self.end_recorded:
            self.runtime._ended.keep(self.run_id, self.feed)
        self._feed_notify()
        failure = self.end_failure
        if failure is not None:
            # The batch that ended the run could not be recorded: as with any
            # batch that cannot be, the run stops with the store's error (it
            # stays recorded as unfinished, and resumes from before that batch).
            return Broken(None, str(failure), failure)
        return outcome


_IDENTITIES: dict[int, tuple[RunSpec, str, str]] = {}
"""``_identity``'s answers, by the ``id`` of the workflow's ``RunSpec``."""


def _identity(workflow: Workflow) -> tuple[str, str]:
    """The workflow's class as ``module:qualname`` and its fingerprint as the
    store keeps it.  Both follow from its class and its ``RunSpec``, which is
    fixed when the workflow is built: they are made once per workflow, not
    once per run."""
    spec = run_spec(workflow)
    known = _IDENTITIES.get(id(spec))
    if known is not None and known[0] is spec:  # the same spec, not one at its address
        return known[1], known[2]
    if len(_IDENTITIES) >= 256:  # workflows built on the fly: keep it bounded
        _IDENTITIES.clear()
    name = _type_name(type(workflow))
    text = json.dumps(fingerprint(workflow), sort_keys=True, separators=(",", ":"))
    _IDENTITIES[id(spec)] = (spec, name, text)
    return name, text
