"""Scenario: a new user's first durable run, killed mid-way and started again.

Why: this is the promise that makes someone pick ``DurableRuntime``, tested the
way they would try it from docs/durability.md alone.  A script runs a five-step
order pipeline on a SQLite file; each step does an "external" side effect (a
line in a ledger file, keyed by ``ctx.idempotency_key()``) and the first run
dies by SIGKILL inside step 3, right after its side effect.  Running the same
script again with the same run id must finish the order with the right total,
without doing steps 1 and 2 again; step 3 runs again (its result was never
recorded) with the same idempotency key, so a real payment API would
recognise the retry.  A third run returns the recorded result and runs nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = textwrap.dedent(
    '''
    """An order pipeline that survives its process (run it twice)."""
    from __future__ import annotations

    import argparse
    import json
    import os
    import signal

    import anyio

    from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step
    from anyflow.durable import DurableRuntime, SqliteStore

    args = argparse.Namespace()


    class Priced(Event):
        total: int


    class Taxed(Event):
        total: int


    class Charged(Event):
        total: int


    class Packed(Event):
        total: int


    def effect(ctx: Context, name: str) -> None:
        """What the outside world sees: one line per step attempt, on disk."""
        with open(args.ledger, "a") as ledger:
            line = {"pid": os.getpid(), "step": name, "key": ctx.idempotency_key()}
            ledger.write(json.dumps(line) + "\\n")
            ledger.flush()
            os.fsync(ledger.fileno())
        if name == args.die_in:
            os.kill(os.getpid(), signal.SIGKILL)  # the machine "crashes" here


    class Order(Workflow):
        @step
        async def price(self, ev: StartEvent, ctx: Context) -> Priced:
            effect(ctx, "price")
            return Priced(total=sum(ev.items))

        @step
        async def tax(self, ev: Priced, ctx: Context) -> Taxed:
            effect(ctx, "tax")
            return Taxed(total=ev.total + ev.total // 10)

        @step
        async def charge(self, ev: Taxed, ctx: Context) -> Charged:
            effect(ctx, "charge")  # e.g. payments.charge(..., idempotency_key=key)
            return Charged(total=ev.total)

        @step
        async def pack(self, ev: Charged, ctx: Context) -> Packed:
            effect(ctx, "pack")
            return Packed(total=ev.total)

        @step
        async def ship(self, ev: Packed, ctx: Context) -> StopEvent:
            effect(ctx, "ship")
            return StopEvent(result=f"shipped, charged {ev.total}")


    async def main() -> None:
        async with SqliteStore(args.db) as store, DurableRuntime(store) as runtime:
            handler = Order().run(run_id=args.run_id, runtime=runtime, items=[40, 60])
            print(json.dumps(await handler))


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        for option in ("--db", "--run-id", "--ledger", "--backend", "--die-in"):
            parser.add_argument(option)
        parser.parse_args(namespace=args)
        anyio.run(main, backend=args.backend)
    '''
)


def run_script(tmp_path: Path, backend: str, die_in: str = "") -> subprocess.CompletedProcess[str]:
    script = tmp_path / "order.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable, str(script), "--db", str(tmp_path / "runs.db"),
        "--run-id", "order-42", "--ledger", str(tmp_path / "ledger.jsonl"),
        "--backend", backend, "--die-in", die_in,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_killed_run_finishes_when_started_again(tmp_path: Path, backend: str) -> None:
    first = run_script(tmp_path, backend, die_in="charge")
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = run_script(tmp_path, backend)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.splitlines()[-1]) == "shipped, charged 110"

    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    pids = list(dict.fromkeys(line["pid"] for line in ledger))
    assert len(pids) == 2, ledger
    assert [(pids.index(line["pid"]), line["step"]) for line in ledger] == [
        (0, "price"),
        (0, "tax"),
        (0, "charge"),  # killed after its side effect, before its result was recorded
        (1, "charge"),  # so it runs again, and only it: price and tax were recorded
        (1, "pack"),
        (1, "ship"),
    ]
    charges = [line["key"] for line in ledger if line["step"] == "charge"]
    assert charges[0] == charges[1], "the re-run of an attempt must keep its idempotency key"
    assert len({line["key"] for line in ledger}) == 5

    third = run_script(tmp_path, backend)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout.splitlines()[-1]) == "shipped, charged 110"
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 6, "a finished run reran"
