"""``anyflow run``: one run of a workflow, watched as it goes; the questions it
asks are answered from the terminal or stdin (see ``_answers``)."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import AnyflowError
from ..events import InputRequiredEvent, WorkflowFailedEvent, WorkflowTimedOutEvent
from ..serialization import encode_value
from ._answers import Answers
from ._errors import CliError
from ._view import LiveView

if TYPE_CHECKING:
    from rich.console import Console

    from ..events import Event
    from ..workflow import Workflow

__all__ = ["parse_input", "run_workflow"]


def parse_input(text: str | None) -> dict[str, Any]:
    """The start event's fields from ``--input``.

    :raises CliError: unless ``text`` is a JSON object.
    """
    if text is None:
        return {}
    try:
        fields = json.loads(text)
    except ValueError as exc:
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(
            f'--input is not valid JSON ({exc}): pass an object, e.g. --input \'{{"name": "x"}}\''
        ) from None
    if not isinstance(fields, dict):
        raise CliError(f"--input must be a JSON object of the start event's fields, not {text!r}")
    return fields


def _json_line(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def _event_data(event: Event) -> dict[str, Any]:
    try:
        encoded = encode_value(event, "$")
    except Exception:  # an event JSON cannot hold: show it anyway
        return {"event": type(event).__name__, "repr": repr(event)}
    return {"event": encoded["__anyflow_event__"], "fields": encoded["fields"]}


async def _run(
    workflow: Workflow, fields: dict[str, Any], as_json: bool, console: Console
) -> tuple[Any, str | None]:
    """The result, or None and why the run failed."""
    try:
        handler = workflow.run(**fields)
    except TypeError as exc:
        # A StartEventError's cause says which field is wrong; the command names --input.
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(f"--input does not fit the start event: {exc.__cause__ or exc}") from None
    except AnyflowError as exc:  # e.g. a workflow that fails validation at run()
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(f"{type(workflow).__name__} cannot run: {exc}") from None
    last: Event | None = None
    answers: Answers | None = None
    prompt = not as_json and sys.stdin.isatty()
    try:
        async with handler:
            with LiveView(console, list(workflow.steps())) as view:
                answers = Answers(
                    handler, workflow, console, view, prompt=prompt, echo=not (as_json or prompt)
                )
                async with anyio.create_task_group() as tg:
                    tg.start_soon(answers.serve)
                    try:
                        async for event in handler.stream_events(expose_internal=True):
                            last = event
                            if as_json:
                                _json_line(_event_data(event))
                            else:
                                view.show(event)
                            if isinstance(event, InputRequiredEvent):
                                answers.ask(event)
                    finally:
                        answers.close()
                        tg.cancel_scope.cancel()
            result = await handler
    except Exception as exc:
        if answers is not None and answers.unanswered is not None:
            return None, f"stdin ended before the question {answers.unanswered!r} was answered"
        if isinstance(last, WorkflowFailedEvent) and last.step_name:
            return None, (
                f"step {last.step_name!r} failed after {last.attempts} attempt(s): "
                f"{last.exception_type}: {last.exception_message}"
            )
        if isinstance(last, WorkflowTimedOutEvent):
            return None, f"the run timed out after {last.timeout:g} s"
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"{type(exc).__name__}: {first}"
    return result, None


def run_workflow(workflow: Workflow, fields: dict[str, Any], *, backend: str, as_json: bool) -> int:
    """Run ``workflow`` to its end under ``backend``; print and return the exit status."""
    from rich.console import Console

    # The engine logs a failed step with its traceback; here the failure is
    # said once, in one line, below.
    logging.getLogger("anyflow").addHandler(logging.NullHandler())
    console = Console(highlight=False)
    result, failure = anyio.run(_run, workflow, fields, as_json, console, backend=backend)
    if failure is not None:
        if as_json:
            _json_line({"error": failure})
        print(f"error: the run failed: {failure}", file=sys.stderr)
        return 1
    try:
        encoded = encode_value(result, "$.result")
    except Exception as exc:
        print(f"error: the result cannot be written as JSON: {exc}", file=sys.stderr)
        return 1
    if as_json:
        _json_line({"result": encoded})
    else:
        console.print("[bold]result:[/]", highlight=False)
        console.print_json(data=encoded)
    return 0
