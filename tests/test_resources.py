"""Resources: step parameters annotated ``Annotated[T, Resource(factory)]``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import pytest
from anyio.lowlevel import checkpoint

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    Event,
    Resource,
    ResourceError,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowValidationError,
    step,
)

from .test_typed_state import run_doc_example

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


class Conn:
    """A stand-in for a client object."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Conn({self.n})"


class Item(Event):
    n: int


class Done(Event):
    pass


class Pool:
    """Counts what its factories made and closed, and in which order."""

    def __init__(self) -> None:
        self.made = 0
        self.log: list[str] = []

    def sync(self) -> Conn:
        self.made += 1
        return Conn(self.made)

    async def make_async(self) -> Conn:
        self.made += 1
        await checkpoint()
        return Conn(self.made)

    @asynccontextmanager
    async def managed(self) -> AsyncIterator[Conn]:
        self.made += 1
        conn = Conn(self.made)
        self.log.append(f"open {conn.n}")
        try:
            yield conn
        except BaseException as exc:
            self.log.append(f"close {conn.n} after {type(exc).__name__}")
            raise
        else:
            self.log.append(f"close {conn.n}")


async def test_sync_async_and_context_manager_factories_are_injected() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            a: Annotated[Conn, Resource(pool.sync)],
            b: Annotated[Conn, Resource(pool.make_async)],
            c: Annotated[Conn, Resource(pool.managed)],
        ) -> StopEvent:
            assert pool.log == ["open 3"]  # entered before the step runs
            return StopEvent(result=[a, b, c])

    a, b, c = await Flow().run()
    assert [type(x) for x in (a, b, c)] == [Conn, Conn, Conn]
    assert sorted(x.n for x in (a, b, c)) == [1, 2, 3]
    assert pool.log == ["open 3", "close 3"]  # closed when the run ended, before run() returned


async def test_resource_parameters_are_not_taken_for_the_event_parameter() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def go(
            self,
            db: Annotated[Conn, Resource(pool.sync)],
            ev: StartEvent,
            ctx: Context,
            *,
            other: Annotated[Conn, Resource(pool.sync)],
        ) -> StopEvent:
            return StopEvent(result=(type(ev).__name__, type(ctx).__name__, db.n, other.n))

    (info,) = Flow.steps().values()
    assert [name for name, _ in info.resources] == ["db", "other"]
    assert info.accepts == (StartEvent,)
    assert await Flow().run() == ("StartEvent", "Context", 1, 2)


async def test_a_cached_resource_is_shared_by_steps_asking_with_the_same_parameter() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def first(self, ev: StartEvent, db: Annotated[Conn, Resource(pool.sync)]) -> Item:
            return Item(n=db.n)

        @step
        async def second(
            self, ev: Item, db: Annotated[Conn, Resource(pool.sync, cache=True)]
        ) -> StopEvent:
            return StopEvent(result=(ev.n, db.n))

    assert await Flow().run() == (1, 1)
    assert pool.made == 1
    assert await Flow().run() == (2, 2)  # one value per run, not per workflow


async def test_an_unhashable_factory_is_cached_by_identity() -> None:
    class Factory:
        __hash__ = None  # type: ignore[assignment]

        def __init__(self) -> None:
            self.made = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Factory)

        def __call__(self) -> Conn:
            self.made += 1
            return Conn(self.made)

    factory = Factory()

    class Flow(Workflow):
        @step
        async def first(self, ev: StartEvent, db: Annotated[Conn, Resource(factory)]) -> Item:
            return Item(n=db.n)

        @step
        async def second(self, ev: Item, db: Annotated[Conn, Resource(factory)]) -> StopEvent:
            return StopEvent(result=(ev.n, db.n))

    assert await Flow().run() == (1, 1)
    assert factory.made == 1


async def test_two_parameters_with_one_factory_get_different_values() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            reader: Annotated[Conn, Resource(pool.sync)],
            writer: Annotated[Conn, Resource(pool.sync)],
        ) -> StopEvent:
            return StopEvent(result=reader is writer)

    assert await Flow().run() is False
    assert pool.made == 2


async def test_an_uncached_resource_is_made_for_each_call_and_closed_after_it() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
            for i in range(3):
                ctx.send_event(Item(n=i))
            return None

        @step
        async def use(
            self, ev: Item, ctx: Context, conn: Annotated[Conn, Resource(pool.managed, cache=False)]
        ) -> StopEvent | None:
            pool.log.append(f"use {conn.n}")
            if ctx.collect_events(ev, [Item] * 3) is None:
                return None
            return StopEvent(result=pool.made)

    assert await Flow().run() == 3
    assert pool.log == [
        "open 1",
        "use 1",
        "close 1",
        "open 2",
        "use 2",
        "close 2",
        "open 3",
        "use 3",
        "close 3",
    ]


async def test_concurrent_first_use_calls_the_factory_once() -> None:
    calls = 0

    async def slow_connect() -> Conn:
        nonlocal calls
        calls += 1
        await anyio.wait_all_tasks_blocked()  # every other worker asks meanwhile
        return Conn(calls)

    class Flow(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Item | None:
            for i in range(4):
                ctx.send_event(Item(n=i))
            return None

        @step(num_workers=4)
        async def use(
            self, ev: Item, ctx: Context, db: Annotated[Conn, Resource(slow_connect)]
        ) -> StopEvent | None:
            got = ctx.collect_events(Item(n=id(db)), [Item] * 4)
            if got is None:
                return None
            return StopEvent(result={e.n for e in got})

    ids = await Flow().run()
    assert calls == 1
    assert len(ids) == 1


async def test_a_failing_factory_fails_the_step_naming_step_and_parameter() -> None:
    def connect() -> Conn:
        raise ConnectionError("db is down")

    class Flow(Workflow):
        @step
        async def query(self, ev: StartEvent, db: Annotated[Conn, Resource(connect)]) -> StopEvent:
            raise AssertionError("not reached")

    with pytest.raises(
        ResourceError,
        match=r"^resource 'db' of step 'query' failed: its factory .*connect raised ConnectionError: db is down\nraised by step 'query' \(attempt 1\)$",
    ) as caught:
        await Flow().run()
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.__notes__ == ["raised by step 'query' (attempt 1)"]


async def test_a_failing_factory_is_retried_by_the_steps_retry_policy() -> None:
    attempts = 0

    async def flaky() -> Conn:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError(f"refused ({attempts})")
        return Conn(attempts)

    class Flow(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
        async def query(
            self, ev: StartEvent, ctx: Context, db: Annotated[Conn, Resource(flaky)]
        ) -> StopEvent:
            info = ctx.retry_info()
            assert isinstance(info.last_exception, ResourceError)
            return StopEvent(result=(db.n, info.attempt))

    assert await Flow().run() == (3, 3)  # failures are not cached


async def test_a_context_manager_resource_is_closed_when_the_run_fails() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def first(self, ev: StartEvent, db: Annotated[Conn, Resource(pool.managed)]) -> Item:
            return Item(n=db.n)

        @step
        async def second(self, ev: Item) -> StopEvent:
            raise ValueError("boom")

    with pytest.raises(ValueError, match=r"^boom\n"):
        await Flow().run()
    assert pool.log == ["open 1", "close 1"]


async def test_context_manager_resources_are_closed_when_the_run_is_cancelled() -> None:
    pool = Pool()
    holding = anyio.Event()

    class Flow(Workflow):
        @step
        async def hold(
            self,
            ev: StartEvent,
            shared: Annotated[Conn, Resource(pool.managed)],
            mine: Annotated[Conn, Resource(pool.managed, cache=False)],
        ) -> StopEvent:
            holding.set()
            await anyio.sleep_forever()
            raise AssertionError("not reached")

    async with BasicRuntime() as runtime:
        handler = Flow().run(runtime=runtime)
        await holding.wait()
        assert pool.log == ["open 1", "open 2"]
        await handler.cancel_run()
        # both closed before cancel_run() returned: the per-call one as the step
        # was cancelled, the cached one as the run ended
        cancelled = anyio.get_cancelled_exc_class().__name__
        assert pool.log == ["open 1", "open 2", f"close 2 after {cancelled}", "close 1"]
        with pytest.raises(WorkflowCancelledByUser):
            await handler


async def test_an_uncached_context_manager_sees_the_steps_exception() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def go(
            self, ev: StartEvent, db: Annotated[Conn, Resource(pool.managed, cache=False)]
        ) -> StopEvent:
            raise KeyError("missing")

    with pytest.raises(KeyError):
        await Flow().run()
    assert pool.log == ["open 1", "close 1 after KeyError"]


async def test_a_context_manager_re_raising_the_steps_exception_is_not_a_close_failure() -> None:
    exits: list[str] = []

    class Reraiser:
        async def __aenter__(self) -> Conn:
            return Conn(1)

        async def __aexit__(self, kind: object, error: BaseException | None, tb: object) -> None:
            exits.append(type(error).__name__)
            if error is not None:
                raise error

    class Flow(Workflow):
        @step
        async def go(
            self, ev: StartEvent, db: Annotated[Conn, Resource(Reraiser, cache=False)]
        ) -> StopEvent:
            raise KeyError("missing")

    with pytest.raises(KeyError) as caught:
        await Flow().run()
    assert exits == ["KeyError"]
    assert caught.value.__notes__ == ["raised by step 'go' (attempt 1)"]


async def test_a_factory_failing_after_another_was_opened_closes_that_one() -> None:
    pool = Pool()

    def broken() -> Conn:
        raise OSError("no disk")

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            db: Annotated[Conn, Resource(pool.managed, cache=False)],
            disk: Annotated[Conn, Resource(broken)],
        ) -> StopEvent:
            raise AssertionError("not reached")

    with pytest.raises(ResourceError, match=r"^resource 'disk' of step 'go' failed"):
        await Flow().run()
    assert pool.log == ["open 1", "close 1 after ResourceError"]


async def test_a_close_failure_after_a_successful_call_fails_the_step() -> None:
    @asynccontextmanager
    async def leaky() -> AsyncIterator[Conn]:
        yield Conn(1)
        raise RuntimeError("flush failed")

    class Flow(Workflow):
        @step
        async def go(
            self, ev: StartEvent, db: Annotated[Conn, Resource(leaky, cache=False)]
        ) -> StopEvent:
            return StopEvent(result="ok")

    with pytest.raises(
        ResourceError,
        match=r"^resource 'db' of step 'go' failed to close: RuntimeError: flush failed\nraised by step 'go'",
    ) as caught:
        await Flow().run()
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_a_cached_close_failure_is_logged_and_the_run_keeps_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @asynccontextmanager
    async def leaky() -> AsyncIterator[Conn]:
        yield Conn(1)
        raise RuntimeError("flush failed")

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, db: Annotated[Conn, Resource(leaky)]) -> StopEvent:
            return StopEvent(result="ok")

    with caplog.at_level(logging.ERROR, logger="anyflow"):
        assert await Flow().run() == "ok"
    (record,) = caplog.records
    assert record.getMessage() == (
        "resource 'db' of step 'go' failed to close: RuntimeError: flush failed"
    )


def test_resources_are_checked_when_declared() -> None:
    def connect() -> Conn:
        return Conn(0)

    with pytest.raises(
        TypeError, match=r"^Resource takes a factory: .*not Resource\(connect\(\)\)$"
    ):
        Resource(connect())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"'cache' must be <class 'bool'>"):
        Resource(connect, cache="yes")  # type: ignore[arg-type]

    with pytest.raises(
        WorkflowValidationError,
        match=r"^step .*PosOnly\.go has a resource parameter 'db' that cannot be passed by name",
    ):

        class PosOnly(Workflow):
            @step
            async def go(
                self, db: Annotated[Conn, Resource(connect)], /, ev: StartEvent
            ) -> StopEvent:
                return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^step .*Twice\.go gives parameter 'db' 2 Resource markers",
    ):

        class Twice(Workflow):
            @step
            async def go(
                self, ev: StartEvent, db: Annotated[Conn, Resource(connect), Resource(connect)]
            ) -> StopEvent:
                return StopEvent()


async def test_annotated_event_and_context_parameters_still_work() -> None:
    class Flow(Workflow):
        @step
        async def go(
            self, ev: Annotated[StartEvent, "doc"], ctx: Annotated[Context, "doc"]
        ) -> Annotated[StopEvent, "doc"]:
            return StopEvent(result=type(ctx).__name__)

    assert await Flow().run() == "Context"


async def test_positional_only_event_and_context_with_resources() -> None:
    pool = Pool()

    class Flow(Workflow):
        @step
        async def go(
            self, ctx: Context, ev: StartEvent, /, db: Annotated[Conn, Resource(pool.sync)]
        ) -> StopEvent:
            return StopEvent(result=(type(ctx).__name__, type(ev).__name__, db.n))

    assert await Flow().run() == ("Context", "StartEvent", 1)


async def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_doc_example(Path(__file__).parent.parent / "docs" / "resources.md")
    await namespace["main"]()
    assert capsys.readouterr().out == (
        "connecting\n"
        "answer to 'owls' from connection 1\n"
        "answer to 'bats' from connection 1\n"
        "closing connection 1\n"
        "done\n"
    )
