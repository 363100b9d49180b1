"""The events an event stream sends, in batches, when no live feed gives them.

``RunBook.stream`` picks where a stream's events come from: a finished run's
are all recorded and read at once (``Replay``); an unfinished run's come from
the catalog's live feed where it has one (``LiveRunCatalog.live_events``), or
else as recorded, one at a time (``OneByOne``).  All three are
``anyflow.durable.LiveEventFeed``s, which is what the stream route reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..durable import Committed, LiveEvent, LiveEventFeed, StoredEvent

__all__ = ["OneByOne", "Replay"]


class Replay:
    """The events of a finished run, read at once: one batch, which is all
    of it (the route sends it as one body, with its length)."""

    def __init__(self, events: list[StoredEvent]) -> None:
        self._events: list[StoredEvent | LiveEvent | Committed] = list(events)
        self.done = False

    async def next_batch(self) -> list[StoredEvent | LiveEvent | Committed]:
        events, self._events = self._events, []
        self.done = True
        return events


class OneByOne:
    """The recorded events of a catalog without a live feed, one per batch."""

    done = False

    def __init__(self, events: AsyncIterator[StoredEvent]) -> None:
        self._events = events

    async def next_batch(self) -> list[StoredEvent | LiveEvent | Committed]:
        try:
            return [await self._events.__anext__()]
        except StopAsyncIteration:
            return []


if TYPE_CHECKING:

    def _are_feeds(replay: Replay, one_by_one: OneByOne) -> tuple[LiveEventFeed, ...]:
        return replay, one_by_one  # mypy checks that both are LiveEventFeeds
