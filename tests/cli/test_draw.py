"""``anyflow draw``: Mermaid text, and an HTML page that opens offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from anyflow.graph import mermaid, workflow_graph

from .conftest import FLOWS_FILE, FLOWS_MODULE
from .flows import Hello

if TYPE_CHECKING:
    from collections.abc import Callable

CHROMIUM = Path("/usr/bin/chromium")
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


def test_draw_writes_mermaid_text(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    output = tmp_path / "hello.mmd"
    status, out, _ = cli("draw", f"{FLOWS_MODULE}:Hello", "-o", str(output))
    assert status == 0
    assert out == f"wrote {output}\n"
    text = output.read_text()
    assert text == mermaid(workflow_graph(Hello))
    assert text.startswith("flowchart TD\n")
    assert 'step_compose["compose"]' in text


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the page is checked in Debian's Chromium, and {CHROMIUM} is missing "
    "(apt-get install -y chromium)",
)
def test_draw_writes_a_page_that_shows_every_step_offline(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    output = tmp_path / "hello.html"
    status, _, _ = cli("draw", f"{FLOWS_FILE}:Hello", "--output", str(output))
    assert status == 0
    url = output.as_uri()
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url)
            steps = page.locator("svg g.node[data-node-type=step]")
            assert steps.count() == len(Hello().steps())
            assert sorted(steps.evaluate_all("els => els.map(e => e.dataset.id)")) == [
                "compose",
                "finish",
            ]
            events = page.locator("svg g.node[data-node-type=event]")
            assert events.count() == 3
            assert page.locator("svg path.edge").count() == 4
            # Every node is drawn where it can be seen, and none overlap.
            boxes = [
                page.locator("svg g.node").nth(i).bounding_box()
                for i in range(page.locator("svg g.node").count())
            ]
            assert all(box is not None and box["width"] > 0 for box in boxes)
            corners = {(box["x"], box["y"]) for box in boxes if box is not None}
            assert len(corners) == len(boxes)
            assert page.title() == "Hello"
        finally:
            browser.close()
    assert requested == [url]
