"""A step's resources under simulation: each method call is a fault site.

The simulator hands a step its resources wrapped (``InternalRunAdapter.
step_resource``); the workflow's code is the same as in production, where
nothing is wrapped.  A call to a method of the resource (``bank.charge(...)``,
named after the step's parameter and the method), or to the resource itself
if it is a function (``notify(...)``), goes through ``CallSites``:

* an ``async`` method pauses the step before the call (one more decision of
  the scheduler: another step may go first, which is how a lost update
  through an outside service is found), then lets a planned fault happen;
* a plain method cannot pause (its caller does not await), so its call is a
  fault site only.

Attributes that are objects are wrapped too (``llm.chat.completions.create``
is a site); plain data (numbers, strings, containers), classes and what the
calls return are not.  The wrapper passes ``isinstance`` checks for the
resource's class, compares equal to the resource, and sets attributes on it.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import TYPE_CHECKING, Any, Protocol

from ._faults import InjectedFault

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._faults import Fault

__all__ = ["CallSites", "wrap_resource"]

_PLAIN = (
    str,
    bytes,
    bytearray,
    int,
    float,
    complex,
    bool,
    tuple,
    list,
    dict,
    set,
    frozenset,
    range,
    type,
    types.ModuleType,
)
"""Values that are data, not services: never wrapped."""


class CallSites(Protocol):
    """What a wrapped resource asks before each call (the simulator)."""

    async def call_site(self, name: str) -> Fault | None:
        """Before an async call: pause, then the fault planned here (an
        ``"error"`` or ``"timeout"``; a crash or a cancel never returns)."""

    def call_site_now(self, name: str) -> Fault | None:
        """Before a plain call: the fault planned here, without a pause."""


def wrap_resource(value: Any, name: str, sites: CallSites) -> Any:
    """``value`` with its calls made fault sites named ``name.method``;
    plain data as it is."""
    if value is None or isinstance(value, _PLAIN):
        return value
    if callable(value):
        return _CallableResource(value, name, sites)
    return _Resource(value, name, sites)


def _is_async(target: Any) -> bool:
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class's own __call__
    return not inspect.isroutine(target) and inspect.iscoroutinefunction(call)


def _injected(fault: Fault, name: str) -> InjectedFault:
    if fault.kind == "timeout":
        return InjectedFault(f"simulated fault: the call {name}() was made, and its answer lost")
    return InjectedFault(f"simulated fault: the call {name}() failed, and was not made")


def _site(method: Callable[..., Any], name: str, sites: CallSites) -> Callable[..., Any]:
    """``method``, its calls going through the fault site ``name``."""
    if _is_async(method):

        @functools.wraps(method)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            fault = await sites.call_site(name)
            if fault is not None and fault.kind == "error":
                raise _injected(fault, name)
            result = await method(*args, **kwargs)
            if fault is not None:  # a timeout: made, then lost
                raise _injected(fault, name)
            return result

        return call_async

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        fault = sites.call_site_now(name)
        if fault is not None and fault.kind == "error":
            raise _injected(fault, name)
        result = method(*args, **kwargs)
        if fault is not None:
            raise _injected(fault, name)
        return result

    return call


class _Resource:
    """A resource whose method calls are fault sites."""

    __slots__ = ("_anyflow_name", "_anyflow_sites", "_anyflow_target")

    def __init__(self, target: Any, name: str, sites: CallSites) -> None:
        object.__setattr__(self, "_anyflow_target", target)
        object.__setattr__(self, "_anyflow_name", name)
        object.__setattr__(self, "_anyflow_sites", sites)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._anyflow_target, attr)
        if attr.startswith("__"):
            return value
        name = f"{self._anyflow_name}.{attr}"
        if inspect.isroutine(value) or isinstance(value, functools.partial):
            return _site(value, name, self._anyflow_sites)
        return wrap_resource(value, name, self._anyflow_sites)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._anyflow_target, attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._anyflow_target, attr)

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:  # isinstance(wrapped, Bank) holds
        return type(self._anyflow_target)

    def __dir__(self) -> list[str]:
        return dir(self._anyflow_target)

    def __repr__(self) -> str:
        return repr(self._anyflow_target)

    def __str__(self) -> str:
        return str(self._anyflow_target)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Resource):
            other = other._anyflow_target
        result: bool = self._anyflow_target == other
        return result

    def __hash__(self) -> int:
        return hash(self._anyflow_target)

    def __bool__(self) -> bool:
        return bool(self._anyflow_target)

    def __len__(self) -> int:
        return len(self._anyflow_target)

    def __iter__(self) -> Any:
        return iter(self._anyflow_target)

    def __aiter__(self) -> Any:
        return self._anyflow_target.__aiter__()

    def __contains__(self, item: object) -> bool:
        return item in self._anyflow_target

    def __getitem__(self, key: Any) -> Any:
        return self._anyflow_target[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._anyflow_target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._anyflow_target[key]

    def __enter__(self) -> Any:
        return self._anyflow_target.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return self._anyflow_target.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        return await self._anyflow_target.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._anyflow_target.__aexit__(*exc_info)


class _CallableResource(_Resource):
    """A resource that is called itself (a function): the call is a site."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = _site(self._anyflow_target, self._anyflow_name, self._anyflow_sites)
        return call(*args, **kwargs)
