"""A pytest plugin for hypothesis tests of async code: ``async def`` tests
decorated with ``@given`` run on asyncio and on trio, as written.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["anyflow.testing.pytest_plugin"]

(or ``pytest -p anyflow.testing.pytest_plugin``).  It needs anyio's pytest
plugin (installed with anyio) and hypothesis.

What it changes, for ``async def`` tests decorated with ``@given`` only:

* they run without ``@pytest.mark.anyio`` or ``anyio_mode = "auto"``, once
  per backend of the ``anyio_backend`` fixture.  The plugin's fixture gives
  asyncio and trio (when trio is installed); your own ``anyio_backend``
  fixture, in a ``conftest.py``, takes precedence;
* each test keeps its own key in hypothesis's example database, and the
  falsifying example is printed under the test's own name.  anyio's plugin
  runs each example through one wrapper function, whose source hypothesis
  would otherwise hash for every test, so one test replayed another's
  failures;
* hypothesis's ``function_scoped_fixture`` health check is not raised for
  ``anyio_backend``: it names a backend, not state an example could leak;
* hypothesis's explain phase is left out: it traces every line of the event
  loop and of the workflow engine, to print lines of them that say nothing
  about a simulated run, and multiplied the time a failing search takes by
  ten or more.  The simulation's report says what happened instead.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from typing import TYPE_CHECKING, Any

import pytest
from anyio.pytest_plugin import extract_backend_and_options, get_runner
from hypothesis import HealthCheck, Phase, settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["anyio_backend"]

_ORIGINAL = "_anyflow_original_test"


def _backends() -> list[str]:
    backends = ["asyncio"]
    if importlib.util.find_spec("trio") is not None:
        backends.append("trio")
    return backends


@pytest.fixture(scope="module", params=_backends())
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The backends async tests run on: asyncio, and trio if it is installed."""
    return request.param


def _async_inner_test(obj: object) -> Callable[..., Any] | None:
    """The coroutine function under ``@given``, if ``obj`` is such a test."""
    handle = getattr(obj, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None:
        return None
    inner = getattr(inner, _ORIGINAL, inner)
    inner = getattr(inner, "_anyio_original_func", inner)
    return inner if inspect.iscoroutinefunction(inner) else None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> None:
    if collector.istestfunction(obj, name) and _async_inner_test(obj) is not None:
        pytest.mark.usefixtures("anyio_backend")(obj)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Adjust the test's hypothesis settings before hypothesis's own plugin
    checks them."""
    if isinstance(item, pytest.Function) and _async_inner_test(item.obj) is not None:
        target = getattr(item.obj, "__func__", item.obj)
        current: settings = getattr(target, "_hypothesis_internal_use_settings", None) or settings()
        changes: dict[str, Any] = {}
        if "anyio_backend" in item.fixturenames:
            changes["suppress_health_check"] = {HealthCheck.function_scoped_fixture} | set(
                current.suppress_health_check
            )
        if Phase.explain in current.phases:
            changes["phases"] = [p for p in current.phases if p is not Phase.explain]
        if changes:
            target._hypothesis_internal_use_settings = settings(current, **changes)
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """Give hypothesis a function that runs each example on the item's
    backend and that looks, to hypothesis, like the test itself: same name,
    source and signature (so the same database key and report)."""
    original = _async_inner_test(pyfuncitem.obj)
    backend = pyfuncitem.funcargs.get("anyio_backend")
    if original is None or backend is None:
        return
    backend_name, backend_options = extract_backend_and_options(backend)

    @functools.wraps(original)
    def run_example(*args: Any, **kwargs: Any) -> None:
        with get_runner(backend_name, backend_options) as runner:
            runner.run_test(functools.partial(original, *args), kwargs)

    setattr(run_example, _ORIGINAL, original)
    # As hypothesis's own plugin does for parametrized tests: one key per item.
    run_example._hypothesis_internal_add_digest = pyfuncitem.nodeid.encode()  # type: ignore[attr-defined]
    pyfuncitem.obj.hypothesis.inner_test = run_example
    # anyio's plugin sees no coroutine function now and lets pytest call the test.
