"""Resources: values a step asks for by annotation, made by a factory.

    async def step(self, ev: Query, db: Annotated[Database, Resource(connect)]) -> Answer

(SKELETON: the implementation is being written; see the issue on step features.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

if TYPE_CHECKING:
    from ._steps import StepInfo

__all__ = ["Resource"]

T = TypeVar("T")

NO_RESOURCES: Mapping[str, Any] = {}


@attrs.frozen(eq=False)
class Resource(Generic[T]):
    """Marks a step parameter as a resource made by ``factory``."""

    factory: Callable[[], Any]
    cache: bool = True


class RunResources:
    """The resources of one run: made on first use, closed when the run ends."""

    async def resolve(self, step: StepInfo) -> Mapping[str, Any]:
        """The values of ``step``'s resource parameters, by parameter name."""
        return NO_RESOURCES

    async def aclose(self) -> None:
        """Close what was opened (async context-manager resources)."""
