"""The runtime a simulated run runs on: a ``BasicRuntime`` whose internal
adapter hands every hook the simulation needs to the ``Controller``.

The adapter is where the driver meets the scheduler: its clock (``now``,
``sleep_until``) is the simulation's, each batch of ticks is reported as
``committed`` (where a planned crash happens), each ``step_point`` pauses the
step, and each resource a step gets is wrapped so that its calls are fault
sites. It does nothing else, so a simulated run is an ordinary run in all
the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ..events import InternalEvent
from ..runtime import (
    BasicRuntime,
    ExternalRunAdapter,
    InternalRunAdapter,
    InternalRunAdapterDecorator,
    RuntimeDecorator,
)
from ._faults import Halted
from ._resources import wrap_resource

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from ..events import Event
    from ..runtime.vocabulary import Command, Tick
    from ._controller import Controller

__all__ = ["SimulatedRuntime"]


class _SimInternal(InternalRunAdapterDecorator):
    __slots__ = ("_ctl",)

    def __init__(self, inner: InternalRunAdapter, ctl: Controller) -> None:
        super().__init__(inner)
        self._ctl = ctl

    def now(self) -> float:
        return self._ctl.clock

    async def sleep_until(self, deadline: float) -> None:
        await self._ctl.sleep_until(deadline)

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self._ctl.committed(ticks)

    def publish(self, event: Any) -> None:
        if not isinstance(event, InternalEvent):
            self._ctl.events.append(event)
        self.inner.publish(event)

    @property
    def schedules_steps(self) -> bool:
        return True

    async def step_point(
        self, worker_id: int | None, step: str | None, point: str
    ) -> BaseException | None:
        return await self._ctl.step_point(worker_id, step, point)

    def step_resource(self, step: str, worker_id: int, param: str, value: Any) -> Any:
        return wrap_resource(value, param, self._ctl)

    async def step_call(
        self, step: str, worker_id: int, attempt: int, event: Event, call: Awaitable[Any]
    ) -> Any:
        try:
            return await call
        except Halted:
            # A plain resource call crashed the process or cancelled the run
            # there: the attempt stops as at an await, until it is dropped.
            await anyio.sleep_forever()
            raise  # pragma: no cover - sleep_forever only ends by cancellation
        finally:
            self._ctl.attempt_ended(anyio.get_current_task().id)


class SimulatedRuntime(RuntimeDecorator):
    def __init__(self, ctl: Controller) -> None:
        super().__init__(BasicRuntime())
        self._ctl = ctl

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        return _SimInternal(internal, self._ctl), external
