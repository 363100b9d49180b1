"""simulate(): the same choices give the same run, on both backends; time is
virtual; faults, outside events and stuck runs behave as documented."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepTimeoutError,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    step,
)
from anyflow._core.ticks import StepFailed, TimerFired
from anyflow.testing import (
    Fault,
    InjectedFault,
    Schedule,
    SimulationError,
    WorkflowTestRunner,
    simulate,
)

pytestmark = pytest.mark.anyio


class Job(Event):
    n: int


class Done(Event):
    n: int


class Race(Workflow):
    """Three jobs in parallel append their number to a list in the store, in
    two store calls: the final list depends on the interleaving."""

    @step
    async def fan(self, ev: StartEvent, ctx: Context) -> Job | None:
        for n in range(3):
            ctx.send_event(Job(n=n))
        return None

    @step(num_workers=3)
    async def work(self, ev: Job, ctx: Context) -> Done:
        seen = await ctx.store.get("seen", default=[])
        await ctx.store.set("seen", [*seen, ev.n])
        return Done(n=ev.n)

    @step
    async def join(self, ev: Done, ctx: Context) -> StopEvent | None:
        if ctx.collect_events(ev, [Done] * 3) is None:
            return None
        return StopEvent(result=await ctx.store.get("seen"))


async def test_the_same_seed_gives_the_same_run_and_seeds_differ() -> None:
    runs = [await simulate(Race(), seed=seed) for seed in (1, 1, 2, 3, 4, 5, 6)]
    assert runs[0].ticks == runs[1].ticks
    assert runs[0].trace == runs[1].trace
    assert runs[0].result == runs[1].result
    assert len({tuple(r.trace) for r in runs}) > 2
    assert {tuple(r.result) for r in runs} != {(0, 1, 2)}  # some lose updates


async def test_no_seed_runs_steps_in_the_order_an_ordinary_run_does() -> None:
    """The first option is the step that has waited longest, as an event loop
    runs its ready tasks in turn: each worker reads the list before any
    writes it, and the updates are lost as in an ordinary run."""
    ordinary = await WorkflowTestRunner(Race(), expose_internal=False).run()
    simulation = await simulate(Race())
    assert simulation.result == ordinary.result == [2]
    assert list(simulation.events) == list(ordinary.collected)
    assert simulation.schedule.choices == ()  # the first option at every decision
    # The recorded choices replay the same run.
    again = await simulate(Race(), schedule=simulation.schedule)
    assert again.ticks == simulation.ticks


def test_a_seed_gives_the_same_ticks_on_asyncio_and_on_trio() -> None:
    async def run() -> list[str]:
        simulation = await simulate(Race(), seed=11)
        return [simulation.report()]

    assert anyio.run(run, backend="asyncio") == anyio.run(run, backend="trio")


class Patient(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=3600, maximum_attempts=2))
    async def once(self, ev: StartEvent, ctx: Context) -> StopEvent:
        if ctx.retry_info().attempt == 1:
            raise ConnectionError("down for an hour")
        return StopEvent(result="back")


async def test_time_is_virtual() -> None:
    with anyio.fail_after(5):
        simulation = await simulate(Patient())
    assert simulation.result == "back"
    [fired] = [t for t in simulation.ticks if isinstance(t, TimerFired)]
    assert fired.now == 3600
    assert simulation.calls == {"once": 2}


class Ledger(Workflow):
    def __init__(self) -> None:
        super().__init__()
        self.effects: list[int] = []

    @step(retry_policy=ConstantDelayRetryPolicy(delay=1, maximum_attempts=3))
    async def act(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.effects.append(ctx.retry_info().attempt)
        return StopEvent(result="ok")


async def test_an_error_fault_fails_the_attempt_before_its_code_runs() -> None:
    wf = Ledger()
    simulation = await simulate(wf, faults=[Fault("error", step="act", nth=0)])
    assert simulation.result == "ok"
    assert wf.effects == [2]  # attempt 1 never ran its code
    [failed] = [t for t in simulation.ticks if isinstance(t, StepFailed)]
    assert isinstance(failed.error, InjectedFault)


async def test_a_timeout_fault_loses_the_result_after_the_code_ran() -> None:
    wf = Ledger()
    simulation = await simulate(wf, faults=[Fault("timeout", nth=0), Fault("timeout", nth=1)])
    assert simulation.result == "ok"
    assert wf.effects == [1, 2, 3]
    errors = [t.error for t in simulation.ticks if isinstance(t, StepFailed)]
    assert [type(e) for e in errors] == [StepTimeoutError, StepTimeoutError]


async def test_a_run_that_fails_raises_with_the_report() -> None:
    wf = Ledger()
    faults = [Fault("error", nth=n) for n in range(3)]
    simulation = await simulate(wf, seed=5, faults=faults)
    assert not simulation.completed
    with pytest.raises(InjectedFault) as caught:
        _ = simulation.result
    report = "\n".join(caught.value.__notes__)
    assert "replay with simulate(..., seed=5)" in report
    assert "StepFailed(worker_id=0" in report


class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        try:
            answer = await ctx.wait_for_event(
                HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ok?"), timeout=60
            )
        except TimeoutError:
            return StopEvent(result="timed out")
        return StopEvent(result=answer.response)


async def test_outside_events_and_timers_race() -> None:
    outcomes = {
        (await simulate(Ask(), seed=s, send=[HumanResponseEvent(response="yes")])).result
        for s in range(20)
    }
    assert outcomes == {"yes", "timed out"}


async def test_a_run_waiting_for_nothing_is_stuck() -> None:
    class Forever(Workflow):
        @step
        async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
            await ctx.wait_for_event(HumanResponseEvent)
            return StopEvent()

    simulation = await simulate(Forever())
    assert simulation.stuck
    assert not simulation.completed


class Loop(Workflow):
    @step
    async def again(self, ev: StartEvent | Job) -> Job | StopEvent:
        return Job(n=0)  # never stops


async def test_a_run_past_its_decision_budget_is_stopped() -> None:
    with pytest.raises(SimulationError, match="more than 50 scheduling decisions"):
        await simulate(Loop(), max_decisions=50)


async def test_seed_and_schedule_are_exclusive() -> None:
    with pytest.raises(TypeError, match="not both"):
        await simulate(Race(), seed=1, schedule=Schedule())


class Pipeline(Workflow):
    """Three steps in a row, the middle one retried once after a delay."""

    def __init__(self) -> None:
        super().__init__()
        self.effects: list[str] = []

    @step
    async def first(self, ev: StartEvent, ctx: Context) -> Job:
        self.effects.append(f"first {ctx.idempotency_key()}")
        return Job(n=1)

    @step(retry_policy=ConstantDelayRetryPolicy(delay=60, maximum_attempts=2))
    async def second(self, ev: Job, ctx: Context) -> Done:
        self.effects.append(f"second {ctx.idempotency_key()}")
        if ctx.retry_info().attempt == 1:
            raise ConnectionError("try again in a minute")
        return Done(n=ev.n + 1)

    @step
    async def third(self, ev: Done, ctx: Context) -> StopEvent:
        self.effects.append(f"third {ctx.idempotency_key()}")
        return StopEvent(result=ev.n + 1)


async def test_a_crash_at_any_batch_resumes_from_the_journal() -> None:
    plain = await simulate(Pipeline())
    assert plain.result == 3
    batches = len(plain.ticks)  # every batch holds one tick in this run
    for nth in range(batches):
        wf = Pipeline()
        simulation = await simulate(wf, faults=[Fault("crash", nth=nth)])
        assert simulation.result == 3, nth
        assert "crash" in simulation.trace
        # An attempt whose result was recorded before the crash never ran
        # again: only the attempt in flight at the crash may have run twice,
        # under the same idempotency key.
        repeated = [e for e in set(wf.effects) if wf.effects.count(e) > 1]
        assert len(repeated) <= 1, (nth, wf.effects)
        assert len(wf.effects) - len(set(wf.effects)) <= 1, (nth, wf.effects)
        # The retry delay went on in virtual time across the crash.
        retried = [t for t in simulation.ticks if isinstance(t, TimerFired)]
        assert [t.now for t in retried] == [60], nth


async def test_a_crash_does_not_duplicate_events_sent_by_a_step_in_flight() -> None:
    simulation = await simulate(Race(), faults=[Fault("crash", nth=1)])
    assert "crash" in simulation.trace
    assert simulation.calls["work"] == 3  # three jobs, each worked on once
    assert len(simulation.result) == 1  # the updates lost as without the crash


async def test_a_cancel_fault_cancels_the_run_as_the_attempt_starts() -> None:
    wf = Pipeline()
    simulation = await simulate(wf, faults=[Fault("cancel", step="second", nth=0)])
    assert not simulation.completed
    assert "cancel" in simulation.trace
    assert [e.split()[0] for e in wf.effects] == ["first"]  # second never ran
    with pytest.raises(WorkflowCancelledByUser):
        _ = simulation.result
