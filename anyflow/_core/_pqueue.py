"""A persistent FIFO queue: the reducer's step queues.

The reducer never mutates state, so a step queue cannot be a ``deque``.  A plain
tuple would make every enqueue copy the whole queue, which turns a fan-out of n
events into O(n^2) work.  This is the classic two-list functional queue: a front
list to pop from and a back list to push onto, both made of ``(head, tail)``
cons cells, so push, push_front and pop are O(1) amortized and share structure
with the previous version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

T = TypeVar("T")

# A cons list: None is empty, (head, tail) otherwise.
_Cons = tuple[T, "_Cons[T]"] | None


def _reverse(cells: _Cons[T]) -> _Cons[T]:
    out: _Cons[T] = None
    while cells is not None:
        head, cells = cells
        out = (head, out)
    return out


@attrs.frozen(eq=False)
class PQueue(Generic[T]):
    """Immutable FIFO queue; every operation returns a new queue.

    Two queues are equal when they hold equal items in the same order, however
    those items are split between the front and back lists.
    """

    _front: _Cons[T] = None
    _back: _Cons[T] = None
    size: int = 0

    def push(self, item: T) -> PQueue[T]:
        """Add ``item`` at the back."""
        return PQueue(self._front, (item, self._back), self.size + 1)

    def push_front(self, item: T) -> PQueue[T]:
        """Add ``item`` at the front, so that it is the next one popped."""
        return PQueue((item, self._front), self._back, self.size + 1)

    def pop(self) -> tuple[T, PQueue[T]]:
        """Return the front item and the queue without it.

        :raises IndexError: if the queue is empty.
        """
        front, back = self._front, self._back
        if front is None:
            if back is None:
                raise IndexError("pop from an empty PQueue")
            front, back = _reverse(back), None
        assert front is not None
        head, rest = front
        return head, PQueue(rest, back, self.size - 1)

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __iter__(self) -> Iterator[T]:
        cells = self._front
        while cells is not None:
            head, cells = cells
            yield head
        cells = _reverse(self._back)
        while cells is not None:
            head, cells = cells
            yield head

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PQueue):
            return NotImplemented
        return self.size == other.size and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"PQueue({list(self)!r})"
