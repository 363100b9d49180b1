"""``python -m benchmarks``: run the suite, print the table, write bench-results/.

Options: ``--quick`` (smoke run in seconds), ``--only WORKLOAD`` (repeatable,
or comma-separated), ``--out DIR`` (default ``bench-results``).

``python -m benchmarks server [--quick]``: the HTTP servers instead (anyflow's
and the incumbent's, each in its own process; see ``benchmarks/server.py``).

``python -m benchmarks dbos [--quick]``: the per-step cost of a chain recorded
in DBOS (anyflow's ``DBOSRuntime``, llama-agents-dbos and a bare DBOS step, on
SQLite and PostgreSQL; see ``benchmarks/dbos.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from . import dbos, durable, server
from ._harness import load_average, machine_info, render_markdown, run_case, to_json
from ._suite import WORKLOADS, Settings, build_cases, build_targets, floor_rows


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="anyflow vs llama-index-workflows, side by side in one process.",
        epilog="python -m benchmarks server --help: the HTTP server benchmark; "
        "python -m benchmarks dbos --help: the DBOS benchmark.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 samples: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help=f"run only these workloads (repeatable or comma-separated): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    args = parser.parse_args(argv)
    only = [w.strip() for item in args.only for w in item.split(",") if w.strip()]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    args.only = only
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["server"]:
        return server.main(argv[1:])
    if argv[:1] == ["dbos"]:
        return dbos.main(argv[1:])
    args = _parse(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    cases = build_cases(settings, args.only)
    machine = machine_info()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print(
        f"{settings.mode} run of {len(cases)} cases on {machine['cpu']} "
        f"({machine['cores']} cores), {machine['python']}",
        file=sys.stderr,
        flush=True,
    )
    clock = time.perf_counter()
    measurements = []
    for case in cases:
        measurements += run_case(case)
    run_settings = {
        "mode": settings.mode + (f" (only {', '.join(args.only)})" if args.only else ""),
        "started": started,
        "total_s": time.perf_counter() - clock,
        "load_average_at_end": load_average(),
        "sizes": {
            "chain": settings.chain,
            "fanout": list(settings.fanout),
            "stream": settings.stream,
            "runs": settings.runs,
            "startup": settings.startup,
            "floor": settings.floor,
            "journal": settings.journal,
        },
        "reps": settings.reps,
        "budget_s": settings.budget_s,
    }
    targets = [t.check(measurements) for t in build_targets(settings)]
    targets = [t for t in targets if t.met is not None]
    markdown = render_markdown(
        machine, run_settings, measurements, floor_rows(measurements), targets
    ) + durable.render_markdown(measurements)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(markdown, encoding="utf-8")
    data = to_json(machine, run_settings, measurements, targets)
    if (journal := durable.to_json(measurements)) is not None:
        data["journal"] = journal
    (args.out / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    print(f"written to {args.out / 'results.md'} and {args.out / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
