"""The web run inspector (``GET /``), used as a person would, in a real browser.

Debian's Chromium runs headless under Playwright's sync API; the server runs in
its own thread on the test's anyio backend (the ``serve``/``url`` fixtures), so
each test runs against a server on asyncio and on trio.  Every wait is one of
Playwright's auto-waiting expectations: nothing sleeps.

``ANYFLOW_SCREENSHOT=1`` rewrites ``docs/server-inspector.png``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from anyflow import Context, Event, StartEvent, StopEvent, Workflow, step

from .conftest import demo_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from anyflow.server import WorkflowServer

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).parents[2] / "docs" / "server-inspector.png"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the inspector is tested in Debian's Chromium, and {CHROMIUM} is missing "
    "(apt-get install -y chromium)",
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# A workflow with a loop and a typed start event, for the graph and the form.


class Brief(StartEvent):
    title: str
    rounds: int = 0
    urgent: bool = False
    tags: tuple[str, ...] = ()


class Draft(Event):
    text: str
    left: int


class Rejected(Event):
    text: str
    left: int


class Approved(Event):
    text: str


class Review(Workflow):
    """Writes a draft, then revises it until the review approves it."""

    @step
    async def write(self, ev: Brief) -> Draft:
        marks = (" [urgent]" if ev.urgent else "") + "".join(f" #{t}" for t in ev.tags)
        return Draft(text=f"draft of {ev.title}{marks}", left=ev.rounds)

    @step
    async def review(self, ev: Draft, ctx: Context) -> Approved | Rejected:
        ctx.write_event_to_stream(ev)
        if ev.left:
            return Rejected(text=ev.text, left=ev.left)
        return Approved(text=ev.text)

    @step
    async def revise(self, ev: Rejected) -> Draft:
        return Draft(text=f"{ev.text}, revised", left=ev.left - 1)

    @step
    async def publish(self, ev: Approved) -> StopEvent:
        return StopEvent(result=ev.text)


# The browser.


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage); fails the test on an uncaught script
    error, or anything the page's Content-Security-Policy refused."""
    context = browser.new_context(viewport={"width": 1320, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        # What the page's Content-Security-Policy blocked (an inline style, a script).
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("console", on_console)
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"the page's scripts failed: {errors}"


# The scenarios.


def test_a_new_user_runs_answers_and_cancels(url: str, page: Page) -> None:
    page.goto(url)
    workflows = page.get_by_role("list", name="Workflows")
    expect(workflows.get_by_role("button")).to_have_text(["greet", "count", "ask", "fail"])
    runs = page.get_by_role("table", name="Runs")
    run = page.get_by_role("region", name=re.compile(r"^Run "))
    status = run.get_by_label("Status", exact=True)
    events = run.get_by_role("log", name="Events").get_by_role("listitem")

    # greet is open: its start event takes free fields, typed as JSON.
    workflows.get_by_role("button", name="greet").click()
    greet = page.get_by_role("form", name="Start a run of greet")
    greet.get_by_label("Extra fields (JSON)").fill('{"name": "Ada"}')
    greet.get_by_role("button", name="Start run").click()
    greeted = runs.get_by_role("row").filter(has_text="greet")
    expect(greeted).to_have_count(1)
    greeted.get_by_role("button").click()
    expect(events.last).to_contain_text("StopEvent")
    expect(events.last).to_contain_text('{"result":"hello Ada"}')
    expect(status).to_have_text("completed")
    expect(run.get_by_label("Result", exact=True)).to_have_text("hello Ada")
    expect(greeted).to_contain_text("completed")
    expect(run.get_by_role("button", name="Cancel run")).to_be_hidden()

    # ask waits for an answer: the page shows the question and a form for it.
    workflows.get_by_role("button", name="ask").click()
    page.get_by_role("form", name="Start a run of ask").get_by_role(
        "button", name="Start run"
    ).click()
    answer = run.get_by_role("form", name="Answer")
    expect(answer).to_contain_text("Who are you?")
    expect(status).to_have_text("running")
    event_type = answer.get_by_label("Event type")
    expect(event_type).to_have_value("Answer")  # guessed from GET /workflows/ask/events
    event_type.fill("Answer")
    answer.get_by_label("key", exact=True).fill("name")
    answer.get_by_label("response", exact=True).fill("Ada")
    answer.get_by_role("button", name="Send answer").click()
    expect(events.last).to_contain_text("nice to meet you, Ada")
    expect(status).to_have_text("completed")
    expect(answer).to_be_hidden()
    answered = run.get_by_label("Handler").inner_text()

    # Another ask, cancelled from the page while it waits.
    page.get_by_role("form", name="Start a run of ask").get_by_role(
        "button", name="Start run"
    ).click()
    expect(run.get_by_label("Handler")).not_to_have_text(answered)
    expect(answer).to_contain_text("Who are you?")
    cancelled = run.get_by_label("Handler").inner_text()
    run.get_by_role("button", name="Cancel run").click()
    expect(status).to_have_text("cancelled")
    expect(run.get_by_label("Error", exact=True)).to_have_text("cancelled")
    expect(events.last).to_contain_text("WorkflowCancelledEvent")
    expect(answer).to_be_hidden()
    expect(run.get_by_role("button", name="Cancel run")).to_be_hidden()
    expect(runs.get_by_role("row").filter(has_text=cancelled[:8])).to_contain_text("cancelled")

    # The graph of the selected run's workflow: a box per step.
    graph = page.get_by_role("img", name=re.compile(r"^Graph of ask:"))
    expect(graph.locator("g.node.step > text")).to_have_text(["ask"])
    expect(graph.locator("g.node.event")).to_have_count(2)

    # Going back to the first run replays its events and shows its graph.
    greeted.get_by_role("button").click()
    expect(events).to_have_count(2)
    expect(events.first).to_contain_text("Progress")
    expect(status).to_have_text("completed")
    expect(page.get_by_role("img", name=re.compile(r"^Graph of greet:"))).to_be_visible()


def test_a_token_protected_server_asks_for_the_token_once(
    serve: Callable[[WorkflowServer], str], page: Page
) -> None:
    url = serve(demo_server(token="s3cret"))
    page.goto(url)
    dialog = page.get_by_role("dialog", name="This server needs a token")
    dialog.get_by_label("Access token").fill("wrong")
    dialog.get_by_role("button", name="Use token").click()
    expect(dialog).to_contain_text("refused")
    dialog.get_by_label("Access token").fill("s3cret")
    dialog.get_by_role("button", name="Use token").click()
    expect(dialog).to_be_hidden()
    workflows = page.get_by_role("list", name="Workflows")
    expect(workflows.get_by_role("button")).to_have_count(4)

    # The live events come over fetch() with the header (EventSource cannot send one).
    workflows.get_by_role("button", name="greet").click()
    greet = page.get_by_role("form", name="Start a run of greet")
    greet.get_by_label("Extra fields (JSON)").fill('{"name": "Ada"}')
    greet.get_by_role("button", name="Start run").click()
    run = page.get_by_role("region", name=re.compile(r"^Run "))
    expect(run.get_by_role("log", name="Events").get_by_role("listitem").last).to_contain_text(
        "hello Ada"
    )

    # The tab keeps the token: a reload asks nothing.
    page.reload()
    expect(workflows.get_by_role("button")).to_have_count(4)
    expect(page.get_by_role("row").filter(has_text="greet")).to_contain_text("completed")
    expect(dialog).to_be_hidden()


def test_a_typed_start_form_and_the_graph_of_a_loop(
    serve: Callable[[WorkflowServer], str], page: Page, backend_name: str
) -> None:
    server = demo_server()
    server.add_workflow("review", Review())
    url = serve(server)
    page.goto(f"{url}/#workflow=review")

    # One input per field of the start event, checked before anything is sent.
    form = page.get_by_role("form", name="Start a run of review")
    # The fields come from the start event's schema, fetched after the page loads.
    expect(form.get_by_label("title")).to_be_visible()
    form.get_by_role("button", name="Start run").click()
    expect(form.get_by_role("alert")).to_have_text("title is required")
    expect(page.get_by_role("table", name="Runs").get_by_role("row")).to_have_count(1)  # header
    title = "<img src=x onerror=window.pwned=1>Plan"
    form.get_by_label("title").fill(title)
    form.get_by_label("rounds").fill("1.5")
    form.get_by_role("button", name="Start run").click()
    expect(form.get_by_role("alert")).to_have_text("rounds must be a whole number")
    form.get_by_label("rounds").fill("1")
    form.get_by_label("urgent").check()
    form.get_by_label("tags").fill('["q3", "ops"]')
    form.get_by_role("button", name="Start run").click()

    # Server text is shown as text, never as markup.
    run = page.get_by_role("region", name=re.compile(r"^Run "))
    done = f"draft of {title} [urgent] #q3 #ops, revised"
    expect(run.get_by_label("Result", exact=True)).to_have_text(done)
    events = run.get_by_role("log", name="Events").get_by_role("listitem")
    expect(events).to_have_count(3)  # the two drafts the review read, and the stop
    expect(events.first).to_contain_text(title)
    expect(page.locator("img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None

    # The graph: a box per step, a pill per event, the loop drawn back up.
    representation = page.request.get(f"{url}/workflows/review/representation").json()
    nodes = representation["graph"]["nodes"]
    graph = page.get_by_role("img", name=re.compile(r"^Graph of review:"))
    steps = graph.locator("g.node.step > text")
    expect(steps).to_have_count(sum(n["node_type"] == "step" for n in nodes))
    assert sorted(steps.all_text_contents()) == sorted(Review.steps())
    expect(graph.locator("g.node.event")).to_have_count(
        sum(n["node_type"] == "event" for n in nodes)
    )
    expect(graph.locator("path.edge")).to_have_count(len(representation["graph"]["edges"]))
    expect(graph.locator("path.edge.back")).to_have_count(1)  # revise -> Draft closes the loop
    expect(graph.locator("g.node.seen > text")).to_have_text(["Brief", "Draft", "StopEvent"])
    boxes = [box for box in (r.bounding_box() for r in graph.locator("g.node rect").all()) if box]
    assert len(boxes) == len(nodes)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, f"graph nodes overlap: {a} {b}"

    if os.environ.get("ANYFLOW_SCREENSHOT") == "1" and backend_name == "asyncio":
        # For the docs: a friendlier run of the same workflow, and one of another.
        page.get_by_role("list", name="Workflows").get_by_role("button", name="greet").click()
        greet = page.get_by_role("form", name="Start a run of greet")
        greet.get_by_label("Extra fields (JSON)").fill('{"name": "Ada"}')
        greet.get_by_role("button", name="Start run").click()
        expect(run.get_by_label("Status", exact=True)).to_have_text("completed")
        page.get_by_role("list", name="Workflows").get_by_role("button", name="review").click()
        form.get_by_label("title").fill("the Q3 plan")
        form.get_by_label("rounds").fill("1")
        form.get_by_label("tags").fill('["ops"]')
        form.get_by_role("button", name="Start run").click()
        expect(run.get_by_label("Result", exact=True)).to_have_text(
            "draft of the Q3 plan #ops, revised"
        )
        expect(page.get_by_role("table", name="Runs").get_by_role("row")).to_have_count(4)
        expect(graph.locator("g.node.seen")).to_have_count(3)
        form.get_by_label("title").fill("")
        form.get_by_label("rounds").fill("")
        form.get_by_label("tags").fill("")
        form.get_by_label("tags").blur()
        page.screenshot(path=str(SCREENSHOT), full_page=True)
