"""A follower's send is never lost (issue #17): sent before the run's DBOS
workflow exists, it waits for it; sent to a run that does not exist, awaiting
it raises instead of returning as if the event had arrived."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest
from dbos import DBOS

from anyflow import Context, HumanResponseEvent, StartEvent, StopEvent, Workflow, step
from anyflow.dbos import DBOSRuntime
from anyflow.errors import DurabilityError

if TYPE_CHECKING:
    from collections.abc import Callable


class Reply(HumanResponseEvent):
    n: int = 0


class Wait(Workflow):
    """Waits for a Reply and reports it."""

    @step
    async def wait(self, ev: StartEvent, ctx: Context) -> StopEvent:
        reply = await ctx.wait_for_event(Reply)
        return StopEvent(result=[reply.response, reply.n])


def runtime(database_url: str, attach_timeout: float = 5.0) -> DBOSRuntime:
    return DBOSRuntime(
        name="anyflow-tests",
        database_url=database_url,
        poll_interval=0.02,
        attach_timeout=attach_timeout,
        dbos_config={"log_level": "WARNING"},
    )


class _StartGate:
    """Holds back the start of run ``run_id``'s DBOS workflow until the
    follower has looked for it and found nothing, and no message to the run is
    in flight: a send that does not wait for the workflow has been tried (and
    refused) by then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, run_id: str) -> None:
        self.run_id = run_id
        self.missing = 0  # lookups of the run that found no workflow
        self.sending = 0
        self.sends = 0
        self.opened = anyio.Event()
        status = DBOS.get_workflow_status_async
        send = DBOS.send_async
        start = DBOS.start_workflow_async

        async def get_status(workflow_id: str) -> Any:
            found = await status(workflow_id)
            if workflow_id == run_id and found is None:
                self.missing += 1
                self._check()
            return found

        async def send_async(destination_id: str, *args: Any, **kwargs: Any) -> Any:
            self.sending += 1
            self.sends += 1
            try:
                return await send(destination_id, *args, **kwargs)
            finally:
                self.sending -= 1
                self._check()

        async def start_workflow(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if args and args[0] == run_id:
                await self.opened.wait()
            return await start(func, *args, **kwargs)

        monkeypatch.setattr(DBOS, "get_workflow_status_async", get_status)
        monkeypatch.setattr(DBOS, "send_async", send_async)
        monkeypatch.setattr(DBOS, "start_workflow_async", start_workflow)

    def _check(self) -> None:
        # Two lookups found nothing: the executing handler's before it starts
        # the workflow, and the follower's.
        if self.missing >= 2 and self.sending == 0:
            self.opened.set()


async def test_a_follower_send_before_the_run_exists_waits_for_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _StartGate(monkeypatch, "early")
    async with runtime(database_url) as rt:
        handler = Wait().run(run_id="early", runtime=rt)
        follower = rt.attach(Wait(), "early")
        with anyio.fail_after(60):  # a failure detector: the lost event hangs the run
            await follower.send_event(Reply(response="first", n=1))
            assert gate.opened.is_set()
            assert await handler == ["first", 1]
            assert await follower == ["first", 1]
    assert gate.sends == 1


async def test_a_follower_send_to_a_run_that_does_not_exist_raises(database_url: str) -> None:
    async with runtime(database_url, attach_timeout=0.1) as rt:
        follower = rt.attach(Wait(), "nobody")
        with pytest.raises(
            DurabilityError,
            match=r"Reply was not delivered to run 'nobody': no run 'nobody' is recorded",
        ):
            await follower.send_event(Reply(response="lost"))
        with pytest.raises(DurabilityError, match=r"no run 'nobody' is recorded"):
            await follower
        assert await rt.get_run("nobody") is None
