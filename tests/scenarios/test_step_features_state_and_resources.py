"""Typed run state shared by many workers, and resources (a database pool, an
API client, settings) that anyflow makes for the steps and closes after the run."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import anyio
import anyio.lowlevel
import attrs
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    Resource,
    ResourceError,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowTimeoutError,
    WorkflowValidationError,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------
# Typed state: page-view analytics counted by 8 workers
# --------------------------------------------------------------------------


@attrs.define
class Totals:
    views: int = 0
    bounces: int = 0


@attrs.define
class Analytics:
    processed: int = 0
    totals: Totals = attrs.Factory(Totals)
    by_page: dict[str, int] = attrs.Factory(dict)
    slowest_ms: int = 0


class PageView(Event):
    page: str
    ms: int
    bounced: bool


WORKERS = 8


class AnalyticsFlow(Workflow):
    def __init__(self, expected: int, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.expected = expected
        self.arrived = 0
        self.all_workers_busy = anyio.Event()

    @step
    async def ingest(self, ev: StartEvent, ctx: Context[Analytics]) -> PageView | None:
        for view in ev.views:
            ctx.send_event(view)
        return None

    @step(num_workers=WORKERS)
    async def count(self, ev: PageView, ctx: Context[Analytics]) -> StopEvent | None:
        # hold the first 8 views until 8 workers run at once, so the edits below race
        self.arrived += 1
        if self.arrived == WORKERS:
            self.all_workers_busy.set()
        await self.all_workers_busy.wait()

        async with ctx.store.edit_state() as state:
            processed = state.processed
            await anyio.lowlevel.checkpoint()  # let the other workers run in the middle of the edit
            state.processed = processed + 1
            state.totals.views += 1
            state.totals.bounces += ev.bounced
            state.by_page[ev.page] = state.by_page.get(ev.page, 0) + 1
            state.slowest_ms = max(state.slowest_ms, ev.ms)
            finished = state.processed == self.expected
        if not finished:
            return None
        return StopEvent(
            result={
                "views": await ctx.store.get("totals.views"),
                "home": await ctx.store.get("by_page.home"),
                "missing page": await ctx.store.get("by_page.pricing", default=0),
            }
        )


def page_views(n: int) -> list[PageView]:
    pages = ["home", "docs", "blog"]
    return [PageView(page=pages[i % 3], ms=10 * i, bounced=i % 4 == 0) for i in range(n)]


async def test_eight_workers_update_typed_counters_without_losing_an_update() -> None:
    wf = AnalyticsFlow(expected=60, timeout=10)

    async with wf.run(views=page_views(60)) as handler:
        result = await handler

    assert result == {"views": 60, "home": 20, "missing page": 0}
    state = await handler.ctx.store.get_state()
    assert isinstance(state, Analytics)
    assert state == Analytics(
        processed=60,
        totals=Totals(views=60, bounces=15),
        by_page={"home": 20, "docs": 20, "blog": 20},
        slowest_ms=590,
    )
    assert AnalyticsFlow.state_type is Analytics


async def test_a_misspelt_state_field_is_an_error_naming_the_fields() -> None:
    wf = AnalyticsFlow(expected=WORKERS, timeout=10)
    async with wf.run(views=page_views(WORKERS)) as handler:
        await handler

    with pytest.raises(AttributeError) as info:
        await handler.ctx.store.get("totals.veiws", default=0)
    assert "views" in str(info.value)
    with pytest.raises(KeyError):
        await handler.ctx.store.get("by_page.pricing")


class Quota(Event):
    user: str


class QuotaFlow(Workflow):
    """Untyped store (a dict), prepared by the caller before the run."""

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Quota | None:
        for user in ev.users:
            ctx.send_event(Quota(user=user))
        return None

    @step(num_workers=4)
    async def spend(self, ev: Quota, ctx: Context) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            remaining = state["limits"]["remaining"]
            await anyio.lowlevel.checkpoint()
            state["limits"]["remaining"] = remaining - 1
            state.setdefault("served", []).append(ev.user)
            done = len(state["served"]) == 5
        if done:
            return StopEvent(result=await ctx.store.get("limits.remaining"))
        return None


async def test_the_default_store_is_a_dict_the_caller_can_prepare() -> None:
    wf = QuotaFlow(timeout=10)
    ctx = Context(wf)
    await ctx.store.set("limits.remaining", 100)

    async with wf.run(users=["a", "b", "c", "d", "e"], ctx=ctx) as handler:
        assert await handler == 95

    state = await handler.ctx.store.get_state()
    assert isinstance(state, dict)
    assert sorted(state["served"]) == ["a", "b", "c", "d", "e"]


def test_a_state_class_without_defaults_is_rejected_when_the_workflow_is_defined() -> None:
    @attrs.define
    class NoDefault:
        owner: str

    with pytest.raises(WorkflowValidationError, match="owner"):

        class Broken(Workflow):
            @step
            async def only(self, ev: StartEvent, ctx: Context[NoDefault]) -> StopEvent:
                return StopEvent(result=None)


# --------------------------------------------------------------------------
# Resources: a database pool opened once per run and closed at its end
# --------------------------------------------------------------------------


class FakeDatabase:
    """An async context manager, like a connection pool."""

    instances: ClassVar[list[FakeDatabase]] = []

    def __init__(self) -> None:
        self.open = False
        self.closed = False
        self.rows: dict[str, str] = {}
        FakeDatabase.instances.append(self)

    async def __aenter__(self) -> FakeDatabase:
        await anyio.lowlevel.checkpoint()
        self.open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await anyio.lowlevel.checkpoint()
        self.open = False
        self.closed = True

    async def insert(self, key: str, value: str) -> None:
        assert self.open, "used after close"
        await anyio.lowlevel.checkpoint()
        self.rows[key] = value


Db = Annotated[FakeDatabase, Resource(FakeDatabase)]


@pytest.fixture(autouse=True)
def fresh_database_log() -> None:
    FakeDatabase.instances.clear()


class Row(Event):
    key: str


class Saved(Event):
    key: str
    db_id: int


class Importer(Workflow):
    @step
    async def read_file(self, ev: StartEvent, ctx: Context) -> Row | None:
        await ctx.store.set("rows", len(ev.keys))
        for key in ev.keys:
            ctx.send_event(Row(key=key))
        return None

    @step(num_workers=4)
    async def save(self, ev: Row, db: Db) -> Saved:
        if ev.key == "corrupt":
            raise ValueError("row 'corrupt' does not parse")
        await db.insert(ev.key, ev.key.upper())
        return Saved(key=ev.key, db_id=id(db))

    @step
    async def report(self, ev: Saved, ctx: Context, db: Db) -> StopEvent | None:
        saved = ctx.collect_events(ev, [Saved] * await ctx.store.get("rows"))
        if saved is None:
            return None
        return StopEvent(result={"rows": dict(db.rows), "dbs": {s.db_id for s in saved} | {id(db)}})


async def test_the_database_is_opened_once_per_run_shared_and_closed_when_it_ends() -> None:
    result = await Importer(timeout=10).run(keys=["a", "b", "c", "d", "e", "f"])

    [db] = FakeDatabase.instances  # one pool for 6 rows on 4 workers and 2 steps
    assert result["dbs"] == {id(db)}
    assert result["rows"] == {k: k.upper() for k in "abcdef"}
    assert db.closed  # closed by the time the run's result is returned

    await Importer(timeout=10).run(keys=["g"])
    assert len(FakeDatabase.instances) == 2  # a new run gets a new pool
    assert all(d.closed for d in FakeDatabase.instances)


async def test_the_database_is_closed_when_the_run_fails() -> None:
    with pytest.raises(ValueError, match="does not parse"):
        await Importer(timeout=10).run(keys=["a", "corrupt", "b"])

    assert FakeDatabase.instances
    assert all(db.closed for db in FakeDatabase.instances)


class StuckImporter(Workflow):
    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.connected = anyio.Event()

    @step
    async def save(self, ev: StartEvent, db: Db) -> StopEvent:
        await db.insert("a", "A")
        self.connected.set()
        await anyio.sleep_forever()  # e.g. a lock that is never released
        return StopEvent(result=None)


async def test_the_database_is_closed_when_the_run_is_cancelled_or_times_out() -> None:
    wf = StuckImporter()

    async def cancel_once_connected() -> None:
        async with wf.run() as handler:
            await wf.connected.wait()
            await handler.cancel_run()
            [db] = FakeDatabase.instances
            assert db.closed  # before cancel_run() returns
            await handler

    with pytest.raises(WorkflowCancelledByUser):
        await cancel_once_connected()

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await StuckImporter(timeout=30).run()
    assert clock.now() == 30
    assert len(FakeDatabase.instances) == 2
    assert all(db.closed for db in FakeDatabase.instances)


# --------------------------------------------------------------------------
# Sync and async factories, uncached resources, failing factories
# --------------------------------------------------------------------------

settings_made: list[dict[str, Any]] = []
tokens_made: list[str] = []


def load_settings() -> dict[str, Any]:
    settings = {"region": "eu-west", "retries": 2}
    settings_made.append(settings)
    return settings


async def fetch_token() -> str:
    await anyio.lowlevel.checkpoint()
    token = f"token-{len(tokens_made) + 1}"
    tokens_made.append(token)
    return token


Settings = Annotated[dict, Resource(load_settings)]
Token = Annotated[str, Resource(fetch_token, cache=False)]


class Call(Event):
    n: int


class ApiClientFlow(Workflow):
    @step
    async def plan(self, ev: StartEvent, ctx: Context, settings: Settings) -> Call | None:
        for n in range(3):
            ctx.send_event(Call(n=n))
        return None

    @step
    async def call(
        self, ev: Call, ctx: Context, settings: Settings, token: Token
    ) -> StopEvent | None:
        async with ctx.store.edit_state() as state:
            state.setdefault("calls", []).append((settings["region"], token))
            done = len(state["calls"]) == 3
        if done:
            return StopEvent(result=await ctx.store.get("calls"))
        return None


async def test_sync_factories_are_cached_and_uncached_async_factories_run_per_call() -> None:
    settings_made.clear()
    tokens_made.clear()

    calls = await ApiClientFlow(timeout=10).run()

    assert len(settings_made) == 1  # shared by both steps
    assert [region for region, _ in calls] == ["eu-west"] * 3
    assert sorted(token for _, token in calls) == ["token-1", "token-2", "token-3"]


class Session:
    opened: ClassVar[list[Session]] = []

    def __init__(self) -> None:
        self.state = "new"
        Session.opened.append(self)

    async def __aenter__(self) -> Session:
        self.state = "open"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.state = "closed"


class PerCallSession(Workflow):
    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Call | None:
        for n in range(2):
            ctx.send_event(Call(n=n))
        return None

    @step
    async def use(
        self, ev: Call, ctx: Context, session: Annotated[Session, Resource(Session, cache=False)]
    ) -> StopEvent | None:
        assert session.state == "open"
        if ctx.collect_events(ev, [Call, Call]) is None:
            return None
        return StopEvent(result="ok")


async def test_an_uncached_context_manager_is_closed_right_after_each_call() -> None:
    Session.opened.clear()

    assert await PerCallSession(timeout=10).run() == "ok"

    assert len(Session.opened) == 2
    assert [s.state for s in Session.opened] == ["closed", "closed"]


class FlakyConnect:
    attempts = 0

    async def __aenter__(self) -> str:
        FlakyConnect.attempts += 1
        if FlakyConnect.attempts == 1:
            raise ConnectionRefusedError("db is starting")
        return "connection"

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class ReportFlow(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def query(
        self, ev: StartEvent, ctx: Context, conn: Annotated[str, Resource(FlakyConnect)]
    ) -> StopEvent:
        info = ctx.retry_info()
        return StopEvent(result=(conn, info.attempt, type(info.last_exception).__name__))


class NoRetryReportFlow(Workflow):
    @step
    async def query(
        self, ev: StartEvent, conn: Annotated[str, Resource(FlakyConnect)]
    ) -> StopEvent:
        return StopEvent(result=conn)


async def test_a_failing_resource_is_a_step_failure_that_the_retry_policy_covers() -> None:
    FlakyConnect.attempts = 0
    assert await ReportFlow(timeout=10).run() == ("connection", 2, "ResourceError")

    FlakyConnect.attempts = 0
    with pytest.raises(ResourceError) as info:
        await NoRetryReportFlow(timeout=10).run()
    assert "conn" in str(info.value)
    assert "query" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
