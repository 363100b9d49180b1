"""``anyflow draw TARGET --run RUN_ID --store URL``: a recorded run that
failed, drawn over its workflow's graph, as Mermaid text and as a page opened
in headless Chromium."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import anyflow
from .test_draw import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

REVIEW = "tests.cli.runflows:Review"
"""By module: the run was recorded by ``tests.cli.runflows``'s classes (a file
target would load them again as another module, ``runflows``)."""


def test_a_failed_run_drawn_as_mermaid_shows_counts_order_and_the_failure(
    failed_store_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "run.mmd"
    done = anyflow(
        "draw", REVIEW, "--run", "review-1", "--store", failed_store_url, "-o", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {output}\n"
    lines = output.read_text().splitlines()
    assert lines[:2] == [
        "flowchart TD",
        "    %% run review-1 of Review: failed in step 'review': "
        "ValueError: 'first draft' is <too> short after 2 attempt(s)",
    ]
    assert '    step_write["1. write<br/>1 attempt: 1 ok"]' in lines
    assert (
        '    step_review["2. review<br/>2 attempts: 0 ok, 2 failed<br/>'
        "ValueError: 'first draft' is #lt;too#gt; short after 2 attempt(s)\"]"
    ) in lines
    assert '    step_rewrite["rewrite<br/>not run"]' in lines
    assert "    class step_review failed" in lines
    assert "    class event_StopEvent,event_Rejected,step_rewrite notrun" in lines


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the page is checked in Debian's Chromium, and {CHROMIUM} is missing "
    "(apt-get install -y chromium)",
)
def test_a_failed_run_drawn_as_a_page_shows_the_run_offline(
    cli: Callable[..., tuple[int, str, str]], failed_store_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    output = tmp_path / "run.html"
    status, _, err = cli(
        "draw", REVIEW, "--run", "review-1", "--store", failed_store_url, "-o", str(output)
    )
    assert status == 0, err
    url = output.as_uri()
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url)
            assert page.title() == "Review: run review-1"
            summary = page.locator(".run-summary")
            assert summary.is_visible()
            assert summary.inner_text() == (
                "run review-1 of Review: failed in step 'review': "
                "ValueError: 'first draft' is <too> short after 2 attempt(s)"
            )
            # The table: the steps in the order they first ran, then the one never reached.
            rows = page.locator(".run-steps tr[data-step]")
            assert rows.evaluate_all("rs => rs.map(r => r.dataset.step)") == [
                "write",
                "review",
                "rewrite",
            ]
            # The drawing: the failed step in red, with its counts on it.
            failed = page.locator("svg g.node.failed")
            assert failed.count() == 1
            assert failed.get_attribute("data-id") == "review"
            assert failed.is_visible()
            assert failed.locator("text").all_text_contents() == [
                "2. review",
                "2 attempts: 0 ok, 2 failed",
            ]
            assert failed.locator("rect").evaluate("r => getComputedStyle(r).stroke") == (
                "rgb(185, 28, 28)"
            )
            assert (failed.get_attribute("data-started"), failed.get_attribute("data-failed")) == (
                "2",
                "2",
            )
            assert page.locator("svg g.node.ran[data-id=write] text").first.text_content() == (
                "1. write"
            )
            # What the run never reached is there, faded.
            faded = page.locator("svg g.node.not-run")
            assert sorted(faded.evaluate_all("gs => gs.map(g => g.dataset.id)")) == [
                "Rejected",
                "StopEvent",
                "rewrite",
            ]
            assert (
                faded.evaluate_all("gs => gs.map(g => getComputedStyle(g).opacity)") == ["0.4"] * 3
            )
            assert (
                page.locator("svg g.node[data-id=Draft] text").text_content()
                == "Draft \N{MULTIPLICATION SIGN}1"
            )
            # Every node can be seen, and none overlap.
            boxes = [node.bounding_box() for node in page.locator("svg g.node").all()]
            assert all(box is not None and box["width"] > 0 for box in boxes)
            assert len({(box["x"], box["y"]) for box in boxes if box is not None}) == len(boxes)
        finally:
            browser.close()
    assert requested == [url]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--run", "review-9"],
            "error: the store has no run 'review-9': see `anyflow runs list` "
            "(latest: review-1, greet-1)",
        ),
        (
            ["--run", "greet-1"],
            "error: run 'greet-1' is a run of tests.cli.flows:Hello, not of Review: "
            "draw it with its own workflow (TARGET tests.cli.flows:Hello)",
        ),
    ],
    ids=["unknown-run", "another-workflow"],
)
def test_a_run_that_cannot_be_drawn_is_one_error_line(
    cli: Callable[..., tuple[int, str, str]],
    failed_store_url: str,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    output = tmp_path / "run.mmd"
    status, out, err = cli("draw", REVIEW, *args, "--store", failed_store_url, "-o", str(output))
    assert (status, out, err) == (2, "", message + "\n")
    assert not output.exists()


def test_run_and_store_go_together(
    cli: Callable[..., tuple[int, str, str]], failed_store_url: str, tmp_path: Path
) -> None:
    output = str(tmp_path / "run.mmd")
    status, _, err = cli("draw", REVIEW, "--run", "review-1", "-o", output)
    assert (status, err) == (
        2,
        "error: drawing a recorded run takes both --run and --store: "
        "add --store (the store that recorded it)\n",
    )
    status, _, err = cli("draw", REVIEW, "--store", failed_store_url, "-o", output)
    assert (status, err) == (
        2,
        "error: drawing a recorded run takes both --run and --store: add --run RUN_ID\n",
    )
