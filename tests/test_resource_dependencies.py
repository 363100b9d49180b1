"""Resources the incumbent's way: factories with resource parameters,
``ResourceConfig`` files, ``ResourceManager`` and ``Workflow.validate()``."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import pydantic
import pytest

from anyflow import Event, ResourceError, StartEvent, StopEvent, Workflow, step
from anyflow.errors import ResourceCycleError, WorkflowValidationError
from anyflow.resource import Resource, ResourceConfig, ResourceManager

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Settings(pydantic.BaseModel):
    url: str
    retries: int = 1


@attrs.define
class AttrsSettings:
    url: str
    retries: int = 1


class Client:
    def __init__(self, settings: Any, n: int) -> None:
        self.settings = settings
        self.n = n


class Next(Event):
    pass


def write_config(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


async def test_a_factory_gets_its_resource_parameters_made_first() -> None:
    made: list[str] = []

    def settings() -> dict[str, str]:
        made.append("settings")
        return {"url": "db://x"}

    async def client(
        cfg: Annotated[dict[str, str], Resource(settings)], retries: int = 3
    ) -> tuple[str, int]:
        made.append("client")
        return (cfg["url"], retries)

    class Flow(Workflow):
        @step
        async def first(
            self,
            ev: StartEvent,
            conn: Annotated[tuple[str, int], Resource(client)],
            cfg: Annotated[dict[str, str], Resource(settings)],
        ) -> Next:
            assert conn == ("db://x", 3)
            assert cfg == {"url": "db://x"}
            return Next()

        @step
        async def second(
            self, ev: Next, conn: Annotated[tuple[str, int], Resource(client)]
        ) -> StopEvent:
            return StopEvent(result=conn)

    assert await Flow().run() == ("db://x", 3)
    # The settings are cached per run: made once for the factory and the step.
    assert made == ["settings", "client"]


async def test_an_uncached_dependency_is_made_once_per_step_call() -> None:
    calls: list[int] = []

    def session() -> int:
        calls.append(len(calls))
        return len(calls)

    def repo(s: Annotated[int, Resource(session, cache=False)]) -> int:
        return s * 10

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            r: Annotated[int, Resource(repo, cache=False)],
            s: Annotated[int, Resource(session, cache=False)],
        ) -> Next:
            assert r == s * 10  # one session for this call, shared by repo and the step
            return Next()

        @step
        async def again(
            self, ev: Next, s: Annotated[int, Resource(session, cache=False)]
        ) -> StopEvent:
            return StopEvent(result=s)

    assert await Flow().run() == 2  # a new call, a new session
    assert len(calls) == 2


async def test_a_context_manager_dependency_is_closed_with_the_run() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[str]:
        log.append("open")
        yield "pool"
        log.append("close")

    def user(p: Annotated[str, Resource(pool)]) -> str:
        return f"user of {p}"

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, u: Annotated[str, Resource(user)]) -> StopEvent:
            log.append(u)
            return StopEvent()

    await Flow().run()
    assert log == ["open", "user of pool", "close"]


@pytest.mark.parametrize("model", [Settings, AttrsSettings])
async def test_resource_config_reads_the_selected_object_into_the_annotated_class(
    tmp_path: Path, model: type[Any]
) -> None:
    path = write_config(tmp_path, {"db": {"prod": {"url": "db://prod", "retries": 5}}})

    def client(cfg: Annotated[Any, ResourceConfig(path, path_selector="db.prod")]) -> Any:
        return cfg

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            cfg: Annotated[model, ResourceConfig(path, path_selector="db.prod")],  # type: ignore[valid-type]
            raw: Annotated[dict[str, Any], ResourceConfig(path)],
            through: Annotated[Any, Resource(client)],
        ) -> StopEvent:
            return StopEvent(result=(cfg, raw, through))

    cfg, raw, through = await Flow().run()
    assert isinstance(cfg, model)
    assert (cfg.url, cfg.retries) == ("db://prod", 5)
    assert raw == {"db": {"prod": {"url": "db://prod", "retries": 5}}}
    assert through == {"url": "db://prod", "retries": 5}  # Any: the object as it is


def test_resource_config_takes_json_files_only() -> None:
    with pytest.raises(ValueError, match=r"ResourceConfig reads JSON files only, and 'a\.yaml'"):
        ResourceConfig("a.yaml")


def test_resource_config_names_and_loads_like_the_incumbents(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"a": {"url": "u"}, "b": 1})
    config = ResourceConfig(path, path_selector="a")
    assert config.name == f"{path}.a"
    assert config.cache is True
    config.cls_factory = Settings
    assert config.call() == Settings(url="u")
    config.path_selector = "b"
    with pytest.raises(
        ValueError,
        match=r"^Expected dictionary for configuration from /.*config\.json at path b, got: "
        r"<class 'int'>\. path_selector='.*' must lead through JSON objects in .*config\.json', "
        r"but 'b' there is not one \(int\)$",
    ):
        config.load()


def test_a_class_that_cannot_hold_a_config_is_refused_at_class_creation(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    with pytest.raises(
        WorkflowValidationError,
        match=r"step .*Flow\.go, parameter 'n': <class 'int'> cannot be read from a JSON config",
    ):

        class Flow(Workflow):
            @step
            async def go(
                self, ev: StartEvent, n: Annotated[int, ResourceConfig(path)]
            ) -> StopEvent:
                return StopEvent()


async def test_a_config_that_does_not_fit_fails_the_step_and_validate(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"retries": 2})

    class Flow(Workflow):
        @step
        async def go(
            self, ev: StartEvent, cfg: Annotated[Settings, ResourceConfig(path)]
        ) -> StopEvent:
            return StopEvent()

    wf = Flow()
    with pytest.raises(ResourceError, match=r"^resource 'cfg' of step 'go' failed: its config .*"):
        await wf.run()
    with pytest.raises(
        WorkflowValidationError,
        match=r"(?s)^Resource config validation failed:\n  - In step 'go', parameter 'cfg': "
        r"config .*config\.json: ValidationError: .*url",
    ):
        wf.validate()
    assert wf.validate(validate_resource_configs=False) is False


async def test_validate_reports_a_missing_config_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")

    def client(cfg: Annotated[Settings, ResourceConfig(missing)]) -> int:
        return 1

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, c: Annotated[int, Resource(client)]) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"In step 'go', parameter 'c': config .*nope\.json: FileNotFoundError: no config file",
    ):
        Flow().validate()


async def test_validate_and_run_report_a_cycle_of_factories() -> None:
    def first(x: Annotated[str, Resource(lambda: "")]) -> str:
        return x

    def second(x: Annotated[str, Resource(first)]) -> str:
        return x

    # Close the loop: first's parameter is made by second.
    first.__annotations__["x"] = Annotated[str, Resource(second)]

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, v: Annotated[str, Resource(first)]) -> StopEvent:
            return StopEvent(result=v)

    wf = Flow()
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Resource validation failed:\n  - In step 'go', parameter 'v': Circular resource "
        r"dependency detected: .*first -> .*second -> .*first: each of these factories takes "
        r"the next .*break the cycle",
    ):
        wf.validate()
    # A ValueError too, as in llama-index-workflows; the step and parameter are named.
    with pytest.raises(
        ResourceCycleError,
        match=r"^Circular resource dependency detected: .*first -> .*second -> .*first: .*"
        r"\(resource 'v' of step 'go'\)\n",
    ) as caught:
        await wf.run()
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ResourceError)


async def test_a_factory_parameter_nobody_fills_is_reported() -> None:
    def needs(size: int) -> int:
        return size

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, v: Annotated[int, Resource(needs)]) -> StopEvent:
            return StopEvent(result=v)

    with pytest.raises(
        WorkflowValidationError,
        match=r"the factory .*needs takes 'size', which anyflow cannot fill: give each parameter a default",
    ):
        Flow().validate()
    with pytest.raises(
        ResourceError, match=r"^resource 'v' of step 'go': the factory .*needs takes"
    ):
        await Flow().run()


def test_validate_resources_makes_every_resource_and_reports_failures() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def opened() -> AsyncIterator[str]:
        log.append("open")
        yield "x"
        log.append("close")

    def broken() -> str:
        raise ConnectionError("no database")

    class Flow(Workflow):
        @step
        async def go(
            self,
            ev: StartEvent,
            a: Annotated[str, Resource(opened)],
            b: Annotated[str, Resource(broken)],
        ) -> StopEvent:
            return StopEvent()

    wf = Flow()
    assert wf.validate() is False  # factories are not called unless asked
    assert log == []
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Resource validation failed:\n  - In step 'go', parameter 'b': "
        r"ConnectionError: no database$",
    ):
        wf.validate(validate_resources=True)
    assert log == ["open", "close"]  # made, then closed again


async def test_validate_resources_from_async_code() -> None:
    made: list[int] = []

    async def value() -> int:
        made.append(1)
        return 1

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, v: Annotated[int, Resource(value)]) -> StopEvent:
            return StopEvent(result=v)

    assert Flow().validate(validate_resources=True) is False
    assert made == [1]


async def test_a_resource_manager_value_is_used_instead_of_the_factory() -> None:
    def connect() -> str:
        raise AssertionError("the manager's value is used")

    manager = ResourceManager()
    await manager.set(connect.__qualname__, "shared connection")
    assert manager.get_all() == {connect.__qualname__: "shared connection"}

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, c: Annotated[str, Resource(connect)]) -> StopEvent:
            return StopEvent(result=c)

    wf = Flow(resource_manager=manager)
    assert await wf.run() == "shared connection"
    assert await wf.run() == "shared connection"


async def test_resource_manager_get_makes_and_keeps_cached_values() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[list[str]]:
        log.append("open")
        yield log
        log.append("close")

    counter = iter(range(100))

    def fresh() -> int:
        return next(counter)

    async with ResourceManager() as manager:
        resource = Resource(pool)
        assert await manager.get(resource) is log
        assert await manager.get(resource) is log
        assert manager.get_all() == {resource.name: log}
        uncached = Resource(fresh, cache=False)
        assert await manager.get(uncached) == 0
        assert await manager.get(uncached) == 1
        assert log == ["open"]
    assert log == ["open", "close"]


def test_resource_manager_must_be_a_resource_manager() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(TypeError, match=r"^resource_manager takes an anyflow ResourceManager"):
        Flow(resource_manager={})  # type: ignore[arg-type]


async def test_a_mock_value_is_injected_as_it_is() -> None:
    from unittest import mock

    memory = mock.MagicMock()  # has __aenter__, like every MagicMock

    def get_memory(*args: Any, **kwargs: Any) -> Any:
        return memory

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, m: Annotated[Any, Resource(get_memory)]) -> StopEvent:
            m.put("hi")
            return StopEvent()

    await Flow().run()
    memory.put.assert_called_once_with("hi")


# The examples of docs/resources.md (its blocks are excerpts of these).
class Database:
    def __init__(self, url: str) -> None:
        self.url = url


def settings() -> Settings:
    return Settings(url="db://prod")


async def connect(cfg: Annotated[Settings, Resource(settings)]) -> Database:
    return Database(cfg.url)


class Query(Workflow):
    @step
    async def query(self, ev: StartEvent, db: Annotated[Database, Resource(connect)]) -> StopEvent:
        return StopEvent(result=db.url)


class ClassifierConfig(pydantic.BaseModel):
    categories: list[str]
    threshold: float


Classifier = Annotated[
    ClassifierConfig, ResourceConfig("settings.json", path_selector="classifier")
]


class Classify(Workflow):
    @step
    async def go(self, ev: StartEvent, config: Classifier) -> StopEvent:
        return StopEvent(result=config.categories)


async def test_the_docs_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await Query().run() == "db://prod"
    monkeypatch.chdir(tmp_path)
    data = {"classifier": {"categories": ["spam", "ham"], "threshold": 0.5}}
    (tmp_path / "settings.json").write_text(json.dumps(data))
    assert await Classify().run() == ["spam", "ham"]
