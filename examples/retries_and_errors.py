"""Retries and errors: an invoice pipeline against unreliable services.

* ``fetch_rate`` fails twice and is retried with exponential backoff;
* ``convert`` hangs on its first attempt, which its ``timeout`` interrupts and
  its retry policy runs again;
* ``send`` always fails, and a ``@catch_error`` step turns that into a fallback
  result instead of a failed run.

Then a run whose retries run out fails with the step's own exception.

Run it with ``python examples/retries_and_errors.py`` (add ``--backend trio``).
"""

from __future__ import annotations

import argparse
import importlib.util

import anyio

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    ExponentialBackoffRetryPolicy,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    catch_error,
    step,
)


class Note(Event):
    text: str


class Rated(Event):
    amount: float
    rate: float


class Converted(Event):
    total: float


def note_retry(ctx: Context, step_name: str) -> None:
    """Tell the stream when this attempt is a retry, and why."""
    info = ctx.retry_info()
    if info.last_exception is not None:
        error = info.last_exception
        ctx.write_event_to_stream(
            Note(text=f"{step_name}: attempt {info.attempt} after {type(error).__name__}: {error}")
        )


class Invoice(Workflow):
    def __init__(self) -> None:
        super().__init__(timeout=10)  # the whole run, retries included

    @step(
        retry_policy=ExponentialBackoffRetryPolicy(
            initial_delay=0.01, multiplier=2, max_delay=0.05, maximum_attempts=4, jitter=True
        )
    )
    async def fetch_rate(self, ev: StartEvent, ctx: Context) -> Rated:
        note_retry(ctx, "fetch_rate")
        if ctx.retry_info().attempt < 3:
            raise ConnectionError("rate service unreachable")
        return Rated(amount=ev.amount, rate=1.1)

    @step(timeout=0.05, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def convert(self, ev: Rated, ctx: Context) -> Converted:
        note_retry(ctx, "convert")
        if ctx.retry_info().attempt == 1:
            await anyio.sleep(10)  # a call that hangs: the step timeout interrupts it
        return Converted(total=round(ev.amount * ev.rate, 2))

    @step
    async def send(self, ev: Converted) -> StopEvent:
        raise PermissionError("mail server refused the invoice")

    @catch_error(for_steps=["send"])
    async def keep_draft(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(
            result=f"kept a draft of {ev.input_event.total:.2f} EUR: {ev.step_name} failed "
            f"after {ev.attempts} attempt(s) with {ev.exception_type}: {ev.exception_message}"
        )


class Ping(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.01, maximum_attempts=2))
    async def ping(self, ev: StartEvent) -> StopEvent:
        raise ConnectionError(f"{ev.host} does not answer")


async def main() -> None:
    async with Invoice().run(amount=100) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, Note):
                print(f"  .. {ev.text}")
        print(await handler)

    async with Ping().run(host="db1") as handler:
        last = None
        async for ev in handler.stream_events():
            last = ev
        print(f"last event: {last!r}")
        try:
            await handler
        except ConnectionError as exc:  # the step's own exception, not a wrapper
            print(f"run failed: {type(exc).__name__}: {exc} [{'; '.join(exc.__notes__)}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        parser.exit(2, "error: --backend trio needs trio: pip install 'anyflow[trio]'\n")
    anyio.run(main, backend=args.backend)
