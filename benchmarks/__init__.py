"""Side-by-side benchmarks of anyflow and llama-index-workflows (the incumbent).

Run everything with ``python -m benchmarks`` (``--quick`` for a smoke run,
``--only WORKLOAD`` to pick workloads); see ``docs/performance.md``.

Every workload is written once per engine (``anyflow_impl``, ``incumbent_impl``)
and once on bare anyio streams (``floor``), and every workload function returns
the elapsed seconds of one run *after* checking that the run produced the right
answer, so a broken engine can never look fast.
"""

from __future__ import annotations
