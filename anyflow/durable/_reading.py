"""Reading a durable run's events: as recorded, and live as they are published.

``DurableRuntime.read_events``, ``events()`` and ``live_events()`` answer from
here.  A run executing in this process is read from its journal's feed (each
event as its step writes it, then word of its recording); a run that ended
here lately from what it recorded (``EndedRuns``); any other from the store.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ..errors import ContextSerdeError, DurabilityError
from ..events import Event
from ..serialization import decode_event
from ._journal import decode_record
from ._store import FINISHED

if TYPE_CHECKING:
    from ._runtime import DurableRuntime
    from ._store_journal import StoreJournal

__all__ = [
    "ENDED_KEEP",
    "Committed",
    "EndedRuns",
    "EventReader",
    "LiveEvent",
    "LiveEventReader",
    "LiveItem",
    "StoredEvent",
    "decode_stored_event",
]


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


def _decode_event(text: str, run_id: str, seq: int) -> Event:
    return decode_stored_event(text, run_id, seq).event


def decode_stored_event(text: str, run_id: str, seq: int) -> StoredEvent:
    data = decode_record(text, run_id, "event", seq)
    try:
        return StoredEvent(seq, decode_event(data, f"$.events[{seq}]"), data)
    except ContextSerdeError as exc:
        raise DurabilityError(f"event record {seq} of run {run_id!r}: {exc}") from exc


class EndedRuns:
    """The events of the runs that ended in this runtime lately, as they were
    recorded (the event and its encoding): reading a run's events just after
    it ended (a client that follows it, the server's replay of it) needs
    neither the store nor decoding.  A finished run's records never change,
    but for a purge (``delete_run``).  Bounded by ``ENDED_KEEP`` events."""

    __slots__ = ("_events", "_runs")

    def __init__(self) -> None:
        # Oldest first.  An OrderedDict drops its oldest in constant time; a
        # dict's first key is found by stepping over the slots of those
        # dropped before it, until it is resized.
        self._runs: OrderedDict[str, list[tuple[int, Event, Any]]] = OrderedDict()
        self._events = 0

    def keep(self, run_id: str, feed: list[tuple[int, Event, Any]]) -> None:
        if not feed or len(feed) > ENDED_KEEP // 8:
            return
        self.forget(run_id)
        self._runs[run_id] = feed
        self._events += len(feed)
        while self._events > ENDED_KEEP:
            self._events -= len(self._runs.popitem(last=False)[1])

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
        self._journal: StoreJournal | None = None
        """The execution whose unrecorded events were given, if any."""
        self._seen: StoreJournal | None = None
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
                    buffer.append(Committed(self._committed))  # where now is
                feed = journal.feed
                base = feed[0][0] if feed else journal.next_event
                if self._sent + 1 >= base:
                    self._take(journal, feed[self._sent + 1 - base :])
                    if not buffer:
                        await journal.feed_change().wait()
                    continue
                # Behind the feed: what it missed is recorded, in the store.
            await self._read_store(journal)

    def _take(self, journal: StoreJournal, entries: Any) -> None:
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

    async def _read_store(self, journal: StoreJournal | None) -> None:
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
            self._buffer.append(Committed(self._committed))  # where now is
            records = []
        for seq, text in records:
            self._buffer.append(decode_stored_event(text, run_id, seq))
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


class EventReader:
    """``DurableRuntime.events()``: a plain async iterator (not a generator), so
    a consumer may break out of its loop without leaving anything to finalize."""

    __slots__ = ("_after", "_buffer", "_done", "_run_id", "_runtime")

    def __init__(self, runtime: DurableRuntime, run_id: str, after: int) -> None:
        self._runtime = runtime
        self._run_id = run_id
        self._after = after
        self._buffer: deque[StoredEvent] = deque()
        self._done = False

    def __aiter__(self) -> EventReader:
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
                self._buffer.append(decode_stored_event(text, self._run_id, seq))
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
