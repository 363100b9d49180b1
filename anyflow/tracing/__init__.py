"""OpenTelemetry tracing of runs: a span per run and per step attempt.

::

    from anyflow.tracing import TracingRuntime

    async with TracingRuntime() as runtime:          # or TracingRuntime(DurableRuntime(store))
        result = await MyFlow().run(topic="owls", runtime=runtime)

Needs the ``otel`` extra (``pip install 'anyflow[otel]'``, which brings
``opentelemetry-api``); spans go to whatever tracer provider the application
set up.  See ``docs/tracing.md``.
"""

from __future__ import annotations

from ._runtime import ATTRIBUTES as ATTRIBUTES
from ._runtime import TracingRuntime as TracingRuntime

__all__ = ["ATTRIBUTES", "TracingRuntime"]
