"""``PQueue`` behaves like a ``deque`` used as a FIFO, and old versions never change."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyflow._core._pqueue import PQueue

# An operation: ("push", x), ("push_front", x) or ("pop", None).
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers()),
        st.tuples(st.just("push_front"), st.integers()),
        st.tuples(st.just("pop"), st.none()),
    ),
    max_size=60,
)


def empty() -> PQueue[int]:
    return PQueue()


def apply(queue: PQueue[int], model: deque[int], op: str, item: int | None) -> PQueue[int]:
    """Apply ``op`` to both; check the queue's answer against the model's."""
    if op == "push":
        assert item is not None
        model.append(item)
        return queue.push(item)
    if op == "push_front":
        assert item is not None
        model.appendleft(item)
        return queue.push_front(item)
    if not model:
        with pytest.raises(IndexError, match=r"^pop from an empty PQueue$"):
            queue.pop()
        return queue
    head, queue = queue.pop()
    assert head == model.popleft()
    return queue


def check_same(queue: PQueue[int], model: deque[int]) -> None:
    assert list(queue) == list(model)
    assert len(queue) == len(model)
    assert queue.size == len(model)
    assert bool(queue) is bool(model)
    assert repr(queue) == f"PQueue({list(model)!r})"


@given(operations)
def test_behaves_like_a_deque(ops: list[tuple[str, int | None]]) -> None:
    queue: PQueue[int] = PQueue()
    model: deque[int] = deque()
    for op, item in ops:
        queue = apply(queue, model, op, item)
        check_same(queue, model)


@given(operations)
def test_old_versions_are_unaffected(ops: list[tuple[str, int | None]]) -> None:
    queue: PQueue[int] = PQueue()
    model: deque[int] = deque()
    history: list[tuple[PQueue[int], list[int]]] = [(queue, [])]
    for op, item in ops:
        queue = apply(queue, model, op, item)
        history.append((queue, list(model)))
    for version, contents in history:
        check_same(version, deque(contents))


@given(operations, operations)
def test_branches_from_one_version_are_independent(
    prefix: list[tuple[str, int | None]], branch: list[tuple[str, int | None]]
) -> None:
    """Two histories that share a prefix (and its cons cells) do not see each other."""
    queue: PQueue[int] = PQueue()
    model: deque[int] = deque()
    for op, item in prefix:
        queue = apply(queue, model, op, item)
    base, base_model = queue, deque(model)
    # Drain ``base`` completely along one branch (forcing the back list to be
    # reversed), then run ``branch`` from ``base`` along another.
    drained, drained_model = base, deque(base_model)
    while drained_model:
        drained = apply(drained, drained_model, "pop", None)
    other, other_model = base, deque(base_model)
    for op, item in branch:
        other = apply(other, other_model, op, item)
    check_same(base, base_model)
    check_same(drained, deque())
    check_same(other, other_model)


@given(operations, operations)
def test_equality_follows_contents(
    first: list[tuple[str, int | None]], second: list[tuple[str, int | None]]
) -> None:
    """Two queues are equal exactly when a deque model says so.

    The reducer's state holds these queues, and states are compared with ``==``
    (replay, serialization round trips): two queues holding the same items in the
    same order must be equal however their items are split between the front and
    back lists.
    """
    queues = []
    for ops in (first, second):
        queue: PQueue[int] = PQueue()
        model: deque[int] = deque()
        for op, item in ops:
            queue = apply(queue, model, op, item)
        queues.append((queue, model))
    (q1, m1), (q2, m2) = queues
    assert (q1 == q2) is (m1 == m2)
    assert (q1 != q2) is (m1 != m2)
    if q1 == q2:
        assert hash(q1) == hash(q2)


def test_equal_contents_split_differently_are_equal() -> None:
    """The minimal case of ``test_equality_follows_contents``."""
    assert empty().push(1) == empty().push_front(1)
    assert hash(empty().push(1)) == hash(empty().push_front(1))
    assert empty().push(1) != empty().push(2)
    assert empty().push(1) != (1,)


def test_empty_queue() -> None:
    queue: PQueue[int] = PQueue()
    assert len(queue) == 0
    assert not queue
    assert list(queue) == []
    with pytest.raises(IndexError, match=r"^pop from an empty PQueue$"):
        queue.pop()


def test_push_front_goes_before_pushed_items() -> None:
    queue = empty().push(1).push(2).push_front(0)
    assert list(queue) == [0, 1, 2]
    head, rest = queue.pop()
    assert head == 0
    assert list(rest) == [1, 2]
