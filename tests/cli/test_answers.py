"""``anyflow run`` answers the questions a run asks (``InputRequiredEvent``):
piped, each line of stdin is the next answer, sent as a ``HumanResponseEvent``;
on both backends, in a child process as a user runs it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from anyflow import HumanResponseEvent
from anyflow.cli._answers import answer_class

from .conftest import anyflow
from .runflows import Ask

if TYPE_CHECKING:
    from anyflow import Workflow

backends = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@backends
def test_a_piped_answer_reaches_the_step_that_accepts_it(backend: str) -> None:
    done = anyflow("run", "tests.cli.runflows:Ask", "--backend", backend, stdin="Ada\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "✓ ask#0 → InputRequiredEvent\n? Your name?\n> Ada\n▶ greet#1 on HumanResponseEvent" in out
    )
    assert out.endswith('result:\n"hello Ada"\n')


@backends
def test_answers_are_read_line_by_line_in_the_order_asked(backend: str) -> None:
    done = anyflow(
        "run", "tests/cli/runflows.py:Interview", "--backend", backend, "--json",
        stdin="Ada\nblue\nnever read\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    asked = [
        line["fields"]["prefix"]
        for line in lines
        if line.get("event") == "anyflow.events:InputRequiredEvent"
    ]
    assert asked == ["Name?", "Favourite colour?"]
    assert lines[-1] == {"result": "Ada likes blue"}


@backends
def test_stdin_ending_before_an_answer_cancels_the_run_in_one_error_line(backend: str) -> None:
    done = anyflow("run", "tests.cli.runflows:Interview", "--backend", backend, stdin="Ada\n")
    assert done.returncode == 1
    assert done.stderr == (
        "error: the run failed: stdin ended before the question 'Favourite colour?' was answered\n"
    )


class Destination(HumanResponseEvent):
    pass


class Confirmation(HumanResponseEvent):
    trip: str


def test_the_answer_is_the_one_response_class_the_steps_accept() -> None:
    from anyflow import StartEvent, StopEvent, Workflow, step

    class Trip(Workflow):
        @step
        async def start(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def book(self, ev: Destination) -> StopEvent:
            return StopEvent(result=ev.response)

    class Confirm(Workflow):
        @step
        async def start(self, ev: StartEvent | Confirmation) -> StopEvent:
            return StopEvent()

    flows: list[tuple[Workflow, type[HumanResponseEvent]]] = [
        (Trip(), Destination),
        (Ask(), HumanResponseEvent),
        (Confirm(), HumanResponseEvent),  # a line cannot fill its trip
    ]
    for workflow, expected in flows:
        assert answer_class(workflow) is expected


@backends
def test_an_answer_to_a_wait_is_what_the_wait_takes(backend: str) -> None:
    """The second question is asked by ctx.wait_for_event(Confirmation,
    requirements={"trip": ...}): its answer is a Confirmation about that trip,
    not another Destination (the class the steps accept)."""
    done = anyflow(
        "run", "tests/cli/runflows.py:Trip", "--backend", backend, stdin="Lisbon\nyes\n"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "? Where to?\n> Lisbon\n▶ confirm#1 on Destination" in done.stdout
    assert "? Book Lisbon?\n> yes\n✓ confirm#1 → StopEvent" in done.stdout
    assert done.stdout.endswith('result:\n"Lisbon: yes"\n')


@backends
def test_the_trip_booking_example_books_from_piped_answers(backend: str) -> None:
    done = anyflow(
        "run", "examples/human_in_the_loop.py:TripBooking", "--backend", backend,
        "--input", '{"traveller": "Ann"}', stdin="Lisbon\nyes\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith('result:\n"booked Lisbon for Ann"\n')
