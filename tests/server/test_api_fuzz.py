"""Property-based fuzzing of the live server against its own OpenAPI document.

schemathesis reads ``GET /openapi.json`` from a demo server (greet, count, ask,
fail) running in its own thread, and for every operation hypothesis draws
requests, valid and invalid, from the document.  Each response must be no
server error and must match the schema the document declares for its status.

The one 500 the protocol asks for is a run's own failure: ``POST
/workflows/fail/run`` and ``GET /handlers/{id}`` (or ``/results/{id}``) of a
failed or cancelled run answer 500 with the run's Handler.  Such a response is
accepted only when its body is that Handler, with status failed or cancelled;
it is still held to the schema of the documented 500.

Random handler ids only ever meet 404s, so a handler id is, half of the time,
one of a handful of real runs seeded for the operation: completed (with a plain
and with a custom stop event), failed, cancelled, and one waiting for an
answer.  A request that waits on a run (a blocking ``/run`` of ``ask``, a
stream of the waiting run) gets its answer from the test while it is open, as
a user would send it, so every request ends and every stream is read whole;
no other request does, so it sees the runs as seeded.

The budget: 40 examples an operation (positive and negative ones, drawn by a
derandomized hypothesis, so CI sees the same requests), 14 operations, on
both backends: about 25 s for the file on two cores.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from typing import TYPE_CHECKING, Any

import httpx
import hypothesis
import hypothesis.strategies as st
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

if TYPE_CHECKING:
    import pytest
    from schemathesis import Case
    from schemathesis.core.transport import Response

EXAMPLES = 40
ANSWER = {"type": "Answer", "value": {"key": "name", "response": "fuzz"}}

RUN_FAILURES = {
    "POST /workflows/{name}/run",
    "GET /handlers/{handler_id}",
    "GET /results/{handler_id}",
}
"""The operations that answer a run's own failure with a 500 and its Handler."""

HANDLER_FIELDS = {
    "handler_id",
    "workflow_name",
    "run_id",
    "status",
    "started_at",
    "updated_at",
    "completed_at",
    "error",
    "result",
    "result_unreadable",
}


class Runs:
    """Real runs on the server, by role, for the handler ids of the requests."""

    ROLES = ("completed", "custom_stop", "failed", "cancelled", "waiting")

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.ids: dict[str, str] = {}
        self._serial = itertools.count()
        self.answered = False

    def _id(self, role: str) -> str:
        return f"seed-{role}-{next(self._serial)}"

    def _start(self, name: str, role: str, body: dict[str, Any], *, wait: bool) -> str:
        handler_id = self._id(role)
        path = f"/workflows/{name}/run" if wait else f"/workflows/{name}/run-nowait"
        response = self.client.post(path, json={"handler_id": handler_id, **body})
        assert response.status_code in (200, 500), response.text
        return handler_id

    def seed(self, *roles: str) -> None:
        """A fresh run for each of these roles."""
        for role in roles:
            if role == "completed":
                handler_id = self._start("greet", role, {}, wait=True)
            elif role == "custom_stop":
                handler_id = self._start("count", role, {"start_event": {"count": 2}}, wait=True)
            elif role == "failed":
                handler_id = self._start("fail", role, {}, wait=True)
            elif role == "cancelled":
                handler_id = self._start("ask", role, {}, wait=False)
                assert self.client.post(f"/handlers/{handler_id}/cancel").status_code == 200
            else:
                handler_id = self._start("ask", role, {}, wait=False)
            self.ids[role] = handler_id

    def answer_all(self) -> None:
        """Answer every ask run waiting for its answer: what holds a request open."""
        self.answered = True
        listed = self.client.get("/handlers", params={"workflow_name": "ask", "status": "running"})
        for handler in listed.json()["handlers"]:
            self.client.post(f"/events/{handler['handler_id']}", json={"event": ANSWER})


def _may_wait(case: Case) -> bool:
    """Whether the request may wait on a run that waits for its answer: a
    blocking run of ``ask``, or a run's event stream (which lasts as long as
    the run).  Every other request answers at once, whatever the runs do."""
    label = case.operation.label
    if label == "GET /events/{handler_id}":
        return True
    return (
        label == "POST /workflows/{name}/run" and (case.path_parameters or {}).get("name") == "ask"
    )


def _call(case: Case, runs: Runs) -> Response:
    """``case.call()``, answering the ask runs while a request that may wait on
    one is open.

    Only such a request gets answers: another one sees the runs as they were
    seeded (the waiting run still waiting, hence the 202s), however long it
    takes to be sent and served.  Answering every request that was not back
    within a moment let a slow one (a starved thread, on a loaded machine)
    find the waiting run answered, and took the only 202s of a handler
    route away.
    """
    if not _may_wait(case):
        return case.call(timeout=30)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(case.call, timeout=30)
        for _ in range(600):
            try:
                return future.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                runs.answer_all()
        return future.result(timeout=5)


def _is_run_failure(case: Case, response: Response) -> bool:
    """The protocol's own 500: the Handler of a run that failed or was cancelled."""
    if case.operation.label not in RUN_FAILURES or response.status_code != 500:
        return False
    body = response.json()
    return (
        isinstance(body, dict)
        and set(body) == HANDLER_FIELDS
        and body["status"] in ("failed", "cancelled")
        and isinstance(body["error"], str)
    )


def _strategy(operation: Any) -> st.SearchStrategy[tuple[Case, str | None]]:
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    if "{handler_id}" not in operation.path:
        return st.tuples(cases, st.none())
    return st.tuples(cases, st.one_of(st.none(), st.sampled_from(Runs.ROLES)))


def _fuzz(operation: Any, runs: Runs, seen: set[int]) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(_strategy(operation))
    def fuzz(drawn: tuple[Case, str | None]) -> None:
        case, role = drawn
        runs.answered = False
        if role is not None:
            case.path_parameters = {**(case.path_parameters or {}), "handler_id": runs.ids[role]}
        response = _call(case, runs)
        seen.add(response.status_code)
        if _is_run_failure(case, response):
            checks = [response_schema_conformance]
        else:
            checks = [not_a_server_error, response_schema_conformance]
        case.validate_response(response, checks=checks)
        # Renew the runs the case may have used up (cancelled, purged, ended, answered).
        used = {role} if role is not None and case.method == "POST" else set()
        if runs.answered:
            used.add("waiting")
        runs.seed(*sorted(used))

    runs.seed(*Runs.ROLES)
    fuzz()


def test_every_operation_keeps_to_the_document(url: str, subtests: pytest.Subtests) -> None:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method != "parameters"
    }
    # schemathesis may leave out the operation that serves the document itself
    # (test_openapi.py checks that one).
    labels = {op.label for op in operations}
    assert labels <= documented
    assert documented - labels <= {"GET /openapi.json"}
    seen: dict[str, set[int]] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        runs = Runs(client)
        for operation in operations:
            with subtests.test(msg=operation.label):
                _fuzz(operation, runs, seen.setdefault(operation.label, set()))
    # The seeded runs take the handler routes past their 404s, into every state.
    for label in ("GET /handlers/{handler_id}", "GET /results/{handler_id}"):
        assert {200, 202, 404, 500} <= seen[label], (label, seen[label])
    assert {200, 400, 404, 500} <= seen["POST /workflows/{name}/run"]
