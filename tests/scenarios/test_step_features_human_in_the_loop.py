"""Steps that stop and ask a person: ctx.wait_for_event, requirements, waiter
timeouts, answers remembered across retries, and WorkflowIdleEvent."""

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
    StepStateChanged,
    StopEvent,
    WaitTimeoutError,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowIdleEvent,
    WorkflowTimeoutError,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------
# Expense approvals: several expenses in flight, one manager answering them
# in any order, a single-worker approval step.
# --------------------------------------------------------------------------


class Expense(Event):
    expense_id: str
    amount: int


class ManagerDecision(HumanResponseEvent):
    expense_id: str
    approved: bool


class Decided(Event):
    expense_id: str
    approved: bool


class ExpenseApprovals(Workflow):
    @step
    async def submit(self, ev: StartEvent, ctx: Context) -> Expense | None:
        await ctx.store.set("expected", len(ev.expenses))
        for expense_id, amount in ev.expenses:
            ctx.send_event(Expense(expense_id=expense_id, amount=amount))
        return None

    @step(num_workers=1)
    async def approve(self, ev: Expense, ctx: Context) -> Decided:
        decision = await ctx.wait_for_event(
            ManagerDecision,
            waiter_event=InputRequiredEvent(
                prefix="Approve this expense? ", expense_id=ev.expense_id, amount=ev.amount
            ),
            requirements={"expense_id": ev.expense_id},
        )
        return Decided(expense_id=ev.expense_id, approved=decision.approved)

    @step
    async def report(self, ev: Decided, ctx: Context) -> StopEvent | None:
        expected = await ctx.store.get("expected")
        decided = ctx.collect_events(ev, [Decided] * expected)
        if decided is None:
            return None
        return StopEvent(result={d.expense_id: d.approved for d in decided})


EXPENSES = [("exp-1", 120), ("exp-2", 9_000), ("exp-3", 45)]


async def test_waiting_approvals_hold_no_worker_slot_and_are_matched_by_expense_id() -> None:
    # approve has a single worker: if a waiting step kept its slot, only the
    # first expense would ever be asked about before the manager answered.
    questions: list[InputRequiredEvent] = []
    idle_events = 0
    async with ExpenseApprovals(timeout=10).run(expenses=EXPENSES) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            if isinstance(ev, InputRequiredEvent):
                questions.append(ev)
            elif isinstance(ev, WorkflowIdleEvent):
                idle_events += 1
                # all three are pending at once: answer them newest first
                assert sorted(q.expense_id for q in questions) == ["exp-1", "exp-2", "exp-3"]
                for q in reversed(questions):
                    handler.send_event(
                        ManagerDecision(expense_id=q.expense_id, approved=q.amount < 1_000)
                    )
        result = await handler

    assert result == {"exp-1": True, "exp-2": False, "exp-3": True}
    assert [(q.prefix, q.amount) for q in sorted(questions, key=lambda q: q.expense_id)] == [
        ("Approve this expense? ", 120),
        ("Approve this expense? ", 9_000),
        ("Approve this expense? ", 45),
    ]
    assert idle_events == 1


async def test_a_decision_for_another_expense_does_not_wake_the_wrong_waiter() -> None:
    async with ExpenseApprovals(timeout=10).run(expenses=[("exp-1", 10), ("exp-2", 20)]) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent) and ev.expense_id == "exp-1":
                # the manager answers exp-2 first, whether or not it was asked about yet
                handler.ctx.send_event(ManagerDecision(expense_id="exp-2", approved=False))
                handler.ctx.send_event(ManagerDecision(expense_id="exp-1", approved=True))
        result = await handler

    assert result == {"exp-1": True, "exp-2": False}


# --------------------------------------------------------------------------
# Answers sent early, answers remembered across a retry
# --------------------------------------------------------------------------


class Answer(HumanResponseEvent):
    question: str


class Onboarding(Workflow):
    """Asks two questions in a row; the second is asked only after the first."""

    @step
    async def interview(self, ev: StartEvent, ctx: Context) -> StopEvent:
        name = await ctx.wait_for_event(
            Answer,
            waiter_event=InputRequiredEvent(prefix="Your name?", question="name"),
            requirements={"question": "name"},
        )
        team = await ctx.wait_for_event(
            Answer,
            waiter_event=InputRequiredEvent(prefix="Your team?", question="team"),
            requirements={"question": "team"},
        )
        return StopEvent(result=f"{name.response} joins {team.response}")


async def test_each_question_is_its_own_idle_period() -> None:
    seen: list[Event] = []
    async with Onboarding(timeout=10).run() as handler:
        async for ev in handler.stream_events(expose_internal=True):
            seen.append(ev)
            if isinstance(ev, WorkflowIdleEvent):
                asked = [e for e in seen if isinstance(e, InputRequiredEvent)]
                handler.send_event(Answer(question=asked[-1].question, response=f"<{len(asked)}>"))
        result = await handler

    assert result == "<1> joins <2>"
    visible = [type(e).__name__ for e in seen if not isinstance(e, StepStateChanged)]
    assert visible == [
        "InputRequiredEvent",
        "WorkflowIdleEvent",
        "InputRequiredEvent",
        "WorkflowIdleEvent",
        "StopEvent",
    ]


async def test_an_answer_sent_before_its_question_is_kept_for_the_waiter() -> None:
    async with Onboarding(timeout=10).run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent) and ev.question == "name":
                # the user fills in the whole form at once
                handler.send_event(Answer(question="team", response="payments"))
                handler.send_event(Answer(question="name", response="ada"))
        result = await handler

    assert result == "ada joins payments"


class Refund(HumanResponseEvent):
    order_id: str
    approved: bool


class RefundDesk(Workflow):
    """Fetches the order, asks a supervisor, then calls a flaky refund API."""

    def __init__(self, api_failures: int, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.api_failures = api_failures
        self.order_lookups = 0
        self.refund_calls = 0

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
    async def refund(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.order_lookups += 1  # a side effect before the wait
        approval = await ctx.wait_for_event(
            Refund,
            waiter_event=InputRequiredEvent(prefix="Refund order?", order_id=ev.order_id),
            waiter_id="supervisor",
            requirements={"order_id": ev.order_id},
        )
        if not approval.approved:
            return StopEvent(result="refund refused")
        self.refund_calls += 1
        if self.refund_calls <= self.api_failures:
            raise ConnectionError("refund API unavailable")
        return StopEvent(result=f"refunded {ev.order_id} on attempt {ctx.retry_info().attempt}")


async def test_a_retried_step_does_not_ask_the_supervisor_twice() -> None:
    wf = RefundDesk(api_failures=2, timeout=10)
    questions = 0
    async with wf.run(order_id="A-7") as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                questions += 1
                handler.send_event(Refund(order_id="A-7", approved=True))
        result = await handler

    assert result == "refunded A-7 on attempt 3"
    assert questions == 1  # the answer of the first attempt is reused by the retries
    assert wf.refund_calls == 3
    # code before the wait runs again on each attempt: keep it idempotent
    assert wf.order_lookups == 3


# --------------------------------------------------------------------------
# Waiter timeouts
# --------------------------------------------------------------------------


class Escalation(Workflow):
    @step
    async def ask_owner(self, ev: StartEvent, ctx: Context) -> StopEvent:
        try:
            answer = await ctx.wait_for_event(
                HumanResponseEvent,
                waiter_event=InputRequiredEvent(prefix="Owner, please confirm"),
                timeout=300,
            )
        except WaitTimeoutError:
            return StopEvent(result="escalated to on-call")
        return StopEvent(result=f"owner said {answer.response}")


class Unattended(Workflow):
    @step
    async def ask_owner(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="Owner, please confirm"),
            timeout=300,
        )
        return StopEvent(result=answer.response)


async def test_a_step_can_catch_its_waiter_timeout_and_escalate() -> None:
    asked: list[str] = []
    with virtual_time() as clock:
        async with Escalation(timeout=3600).run() as handler:
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    asked.append(ev.prefix)  # nobody answers
            result = await handler
        assert clock.now() == 300  # the owner had five minutes

    assert asked == ["Owner, please confirm"]
    assert result == "escalated to on-call"


async def test_an_unanswered_wait_fails_the_run_with_a_clear_error() -> None:
    with virtual_time() as clock, pytest.raises(WaitTimeoutError) as info:
        await Unattended(timeout=3600).run()
    assert clock.now() == 300

    message = str(info.value)
    assert "ask_owner" in message
    assert "HumanResponseEvent" in message
    assert isinstance(info.value, TimeoutError)
    assert any("ask_owner" in note for note in getattr(info.value, "__notes__", []))


class SlowHumanFastStep(Workflow):
    @step(timeout=60)
    async def confirm(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Confirm?")
        )
        return StopEvent(result=answer.response)


async def test_time_spent_waiting_for_a_person_does_not_count_against_the_step_timeout() -> None:
    with virtual_time() as clock:
        async with SlowHumanFastStep(timeout=3600).run() as handler:
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    await clock.advance(600)  # ten minutes, against the step's one
                    handler.send_event(HumanResponseEvent(response="confirmed"))
            result = await handler
        assert clock.now() == 600

    assert result == "confirmed"


# --------------------------------------------------------------------------
# Idle detection only when *every* unfinished step waits for outside input
# --------------------------------------------------------------------------


class Crunch(Event):
    pass


class Ask(Event):
    pass


class ReportWithSignOff(Workflow):
    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.release_crunch = anyio.Event()

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> Crunch | Ask | None:
        ctx.send_event(Crunch())
        ctx.send_event(Ask())
        return None

    @step
    async def crunch(self, ev: Crunch, ctx: Context) -> None:
        await self.release_crunch.wait()
        await ctx.store.set("numbers", "crunched")
        return None

    @step
    async def sign_off(self, ev: Ask, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Sign off?")
        )
        return StopEvent(result=(answer.response, await ctx.store.get("numbers", default=None)))


async def test_no_idle_event_while_another_step_is_still_working() -> None:
    wf = ReportWithSignOff(timeout=10)
    seen: list[Event] = []
    async with wf.run() as handler:
        async for ev in handler.stream_events(expose_internal=True):
            seen.append(ev)
            if isinstance(ev, InputRequiredEvent):
                # sign_off waits for a person, crunch is busy: the run is not idle
                await anyio.wait_all_tasks_blocked()
                wf.release_crunch.set()
            elif isinstance(ev, WorkflowIdleEvent):
                handler.send_event(HumanResponseEvent(response="signed"))
        result = await handler

    assert result == ("signed", "crunched")
    crunch_done = next(
        i
        for i, e in enumerate(seen)
        if isinstance(e, StepStateChanged) and e.name == "crunch" and e.step_state == "not_running"
    )
    idle_at = [i for i, e in enumerate(seen) if isinstance(e, WorkflowIdleEvent)]
    assert len(idle_at) == 1
    assert idle_at[0] > crunch_done


# --------------------------------------------------------------------------
# Waiting for an event type that is not a HumanResponseEvent
# --------------------------------------------------------------------------


class Webhook(Event):
    payload: str


class AwaitWebhook(Workflow):
    @step
    async def wait_for_payment_provider(self, ev: StartEvent, ctx: Context) -> StopEvent:
        hook = await ctx.wait_for_event(
            Webhook, waiter_event=InputRequiredEvent(prefix="waiting for the provider")
        )
        return StopEvent(result=hook.payload)


async def test_a_step_can_wait_for_a_plain_event_type_sent_from_outside() -> None:
    async with AwaitWebhook(timeout=10).run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(Webhook(payload="paid"))
        result = await handler

    assert result == "paid"


# --------------------------------------------------------------------------
# A run that ends while a step waits must not run the code after the wait
# --------------------------------------------------------------------------


class Go(Event):
    pass


class Audit(Event):
    pass


class ChargeAfterApproval(Workflow):
    """Charges the card only once the customer approved: the code after the
    wait must run only with an answer in hand."""

    def __init__(self, timeout: float | None = None, audit_fails: bool = False) -> None:
        super().__init__(timeout=timeout)
        self.audit_fails = audit_fails
        self.charged: list[object] = []

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> Go | Audit | None:
        ctx.send_event(Go())
        if self.audit_fails:
            ctx.send_event(Audit())
        return None

    @step
    async def charge(self, ev: Go, ctx: Context) -> StopEvent:
        approval = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Approve the charge?")
        )
        self.charged.append(approval)
        return StopEvent(result="charged")

    @step
    async def audit(self, ev: Audit, ctx: Context) -> None:
        await anyio.wait_all_tasks_blocked()  # charge is parked in its wait by now
        raise RuntimeError("audit service down")


async def test_cancelling_a_run_does_not_resume_a_waiting_step() -> None:
    wf = ChargeAfterApproval(timeout=10)

    async def customer_closes_the_tab() -> None:
        async with wf.run() as handler:
            async for ev in handler.stream_events():
                if isinstance(ev, InputRequiredEvent):
                    await handler.cancel_run()
            await handler

    with pytest.raises(WorkflowCancelledByUser):
        await customer_closes_the_tab()

    assert wf.charged == []


async def test_a_workflow_timeout_does_not_resume_a_waiting_step() -> None:
    wf = ChargeAfterApproval(timeout=30)
    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await wf.run()
    assert clock.now() == 30

    assert wf.charged == []


async def test_another_steps_failure_does_not_resume_a_waiting_step() -> None:
    wf = ChargeAfterApproval(timeout=10, audit_fails=True)
    with pytest.raises(RuntimeError, match="audit service down"):
        await wf.run()

    assert wf.charged == []
