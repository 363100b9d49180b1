"""``StepConfig``: a step as llama-index-workflows describes it, read from anyflow's.

The incumbent's ``@step`` leaves a ``StepConfig`` on the function
(``fn._step_config``), and code written for it reads that: which events the step
accepts and returns, its parameters, its options.  anyflow reads a step once,
into ``StepInfo`` (``anyflow._steps``), when its workflow class is defined; this
class is a read-only view of that reading under the incumbent's field names,
and the workflow puts one on each step function as ``_step_config`` then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs

from .resources import ResourceDefinition

if TYPE_CHECKING:
    # Not at run time: _steps imports decorators, which exports this class.
    from ._steps import StepInfo  # noqa: TC004 (attrs reads no annotation here)
    from .retry import RetryPolicy

__all__ = ["StepConfig"]


@attrs.frozen
class StepConfig:
    """What a step accepts, returns and was configured with, under
    llama-index-workflows' names (``fn._step_config``); ``info`` is anyflow's own
    reading (``Workflow.steps()[name]``)."""

    info: StepInfo

    @property
    def accepted_events(self) -> list[Any]:
        """The event classes the step takes."""
        return list(self.info.accepts)

    @property
    def event_name(self) -> str:
        """The name of the parameter that receives the event (a join step's first)."""
        return self.info.event_name

    @property
    def return_types(self) -> list[Any]:
        """The event classes the step may return (``None`` is not listed)."""
        return list(self.info.returns)

    @property
    def context_parameter(self) -> str | None:
        """The name of the step's ``Context`` parameter, if it has one."""
        return self.info.context_parameter

    @property
    def context_state_type(self) -> type[Any] | None:
        """``S`` of a ``ctx: Context[S]`` parameter; None for an untyped context."""
        return self.info.state_type

    @property
    def num_workers(self) -> int:
        return self.info.options.num_workers

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return self.info.options.retry_policy

    @property
    def resources(self) -> list[ResourceDefinition]:
        """The step's resource parameters, in order."""
        info = self.info
        types = info.resource_types or (None,) * len(info.resources)
        return [
            ResourceDefinition(name, resource, annotation)
            for (name, resource), annotation in zip(info.resources, types, strict=True)
        ]

    @property
    def skip_graph_checks(self) -> list[str]:
        """The graph checks ``@step(skip_graph_checks=...)`` turned off for this step."""
        return list(self.info.options.skip_graph_checks)

    @property
    def collect_params(self) -> list[tuple[str, Any]] | None:
        """A join step's event parameters, (name, event class) in order; None for
        a step with one event parameter."""
        return list(self.info.slots) if self.info.slots else None

    @property
    def collection_param(self) -> tuple[str, tuple[Any, ...]] | None:
        """(name, event classes) of a ``list[E]`` event parameter, else None."""
        return self.info.collection

    @property
    def accept_event_subclasses(self) -> bool:
        """Whether the step takes subclasses of the events it accepts: False only
        after ``@step(accept_event_subclasses=False)`` (anyflow's default is to
        route them; ``info.options.accept_event_subclasses`` is None when the
        decorator did not say)."""
        return self.info.options.accept_event_subclasses is not False

    @property
    def role(self) -> Literal["step", "catch_error"]:
        """``catch_error`` for a ``@catch_error`` step, else ``step``."""
        return "step" if self.info.options.catch is None else "catch_error"

    @property
    def catch_error_for_steps(self) -> list[str] | None:
        """The steps a ``@catch_error(for_steps=...)`` step handles; None for all."""
        catch = self.info.options.catch
        if catch is None or catch.for_steps is None:
            return None
        return list(catch.for_steps)

    @property
    def catch_error_max_recoveries(self) -> int:
        catch = self.info.options.catch
        return 1 if catch is None else catch.max_recoveries
