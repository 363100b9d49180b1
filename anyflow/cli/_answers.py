"""Answering the questions a run asks (``InputRequiredEvent``) from the
terminal, or from stdin line by line when it is piped (or with ``--json``).

Questions are answered one at a time, in the order they were asked, by a task
of their own: the run's events keep streaming while a question waits, and a
run that ends (times out, fails) while one waits ends the command at once.

A line is read in a daemon thread, never in one of anyio's worker threads: a
read from a terminal cannot be interrupted, and an abandoned worker thread
stuck in it would keep the process alive after the run ended.  The task waits
on a queue instead, which ``close()`` releases.
"""

from __future__ import annotations

import contextlib
import math
import queue
import sys
import threading
from typing import TYPE_CHECKING

import anyio
from rich.markup import escape

from ..errors import WorkflowRuntimeError
from ..events import HumanResponseEvent, InputRequiredEvent

if TYPE_CHECKING:
    from rich.console import Console

    from ..handler import WorkflowHandler
    from ..workflow import Workflow
    from ._view import LiveView

__all__ = ["Answers", "answer_class"]


def answer_class(workflow: Workflow) -> type[HumanResponseEvent]:
    """The class an answer to a question a step *returned* is sent as (a
    question a wait published is answered with what the wait takes, see
    ``Answers._answer_to``): the one ``HumanResponseEvent`` subclass
    the workflow's steps accept, if there is exactly one and a line is all it
    needs; otherwise ``HumanResponseEvent`` itself (kept for a step that waits
    for it with ``ctx.wait_for_event``)."""
    accepted = {
        t
        for info in workflow.steps().values()
        for t in info.accepts
        if issubclass(t, HumanResponseEvent)
    }
    if len(accepted) == 1:
        (cls,) = accepted
        try:
            cls(response="")
        except TypeError:  # it has other fields to fill: a line cannot say them
            return HumanResponseEvent
        return cls
    return HumanResponseEvent


def question_text(event: InputRequiredEvent) -> str:
    return event.prefix or repr(event)


class Answers:
    """Reads an answer to each question ``ask``ed and sends it to the run.

    ``prompt``: ask on the terminal (the live view stands aside meanwhile);
    otherwise read stdin line by line, without a prompt.  If stdin ends before
    a question is answered, the run is cancelled (nothing else could answer
    it) and ``unanswered`` names the question.
    """

    def __init__(
        self,
        handler: WorkflowHandler,
        workflow: Workflow,
        console: Console,
        view: LiveView,
        *,
        prompt: bool,
        echo: bool,
    ) -> None:
        self._handler = handler
        self._answer = answer_class(workflow)
        self._console = console
        self._view = view
        self._prompt = prompt
        self._echo = echo
        self._send, self._receive = anyio.create_memory_object_stream[InputRequiredEvent](math.inf)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.unanswered: str | None = None

    def ask(self, event: InputRequiredEvent) -> None:
        self._send.send_nowait(event)

    def close(self) -> None:
        """Release a wait for a line that will not come (the run is over)."""
        self._send.close()
        self._lines.put(None)

    async def serve(self) -> None:
        async with self._receive:
            async for question in self._receive:
                text = question_text(question)
                line = await self._read(text)
                if line is None:
                    self.unanswered = text
                    await self._handler.cancel_run()
                    return
                if self._echo:
                    self._console.print(f"[bold]>[/] {escape(line)}", highlight=False)
                try:
                    self._handler.send_event(self._answer_to(question, line))
                except WorkflowRuntimeError:  # the run ended meanwhile
                    return

    def _answer_to(self, question: InputRequiredEvent, line: str) -> HumanResponseEvent:
        """The event that answers ``question``: what its wait takes, if a step
        waits for it (``ctx.wait_for_event(..., waiter_event=question)``), with
        the wait's requirements; otherwise (a question a step returned) the
        workflow's answer class, which starts the step that accepts it."""
        for wait in self._handler.ctx.pending_waits():
            if wait.question != question:
                continue
            for cls in wait.event_types:
                if not issubclass(cls, HumanResponseEvent):
                    continue
                try:
                    answer = cls(response=line, **wait.requirements)
                except TypeError:  # it has other fields to fill: a line cannot say them
                    continue
                if wait.answers(answer):
                    return answer
        return self._answer(response=line)

    async def _read(self, text: str) -> str | None:
        if self._prompt:
            ask = f"[bold yellow]?[/] {escape(text)} "
            reader = threading.Thread(target=self._prompt_line, args=(ask,), daemon=True)
        else:
            if self._echo:
                self._console.print(f"[bold yellow]?[/] {escape(text)}", highlight=False)
            reader = threading.Thread(target=self._stdin_line, daemon=True)
        with self._view.paused() if self._prompt else contextlib.nullcontext():
            reader.start()
            return await anyio.to_thread.run_sync(self._lines.get, abandon_on_cancel=True)

    def _prompt_line(self, ask: str) -> None:
        try:
            self._lines.put(self._console.input(ask))
        except (EOFError, KeyboardInterrupt):
            self._lines.put(None)

    def _stdin_line(self) -> None:
        line = sys.stdin.readline()
        self._lines.put(line.rstrip("\r\n") if line else None)
