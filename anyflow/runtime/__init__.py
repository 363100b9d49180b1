"""Runtimes host runs: the ``Runtime`` interface, its adapters, and ``BasicRuntime``."""

from __future__ import annotations

from ._adapters import ExternalRunAdapter as ExternalRunAdapter
from ._adapters import ExternalRunAdapterDecorator as ExternalRunAdapterDecorator
from ._adapters import InternalRunAdapter as InternalRunAdapter
from ._adapters import InternalRunAdapterDecorator as InternalRunAdapterDecorator
from ._adapters import Recovery as Recovery
from ._adapters import Runtime as Runtime
from ._adapters import RuntimeDecorator as RuntimeDecorator
from ._basic import BasicRuntime as BasicRuntime
from ._current import basic_runtime as basic_runtime
from ._current import get_current_runtime as get_current_runtime
from ._driver import terminal_event as terminal_event

__all__ = [
    "BasicRuntime",
    "ExternalRunAdapter",
    "ExternalRunAdapterDecorator",
    "InternalRunAdapter",
    "InternalRunAdapterDecorator",
    "Recovery",
    "Runtime",
    "RuntimeDecorator",
    "basic_runtime",
    "get_current_runtime",
    "terminal_event",
]
