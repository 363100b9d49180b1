"""``anyflow draw``: a workflow's graph, or a recorded run laid over it, as
Mermaid text or a self-contained HTML page (an inline SVG laid out here, in
layers: no script, no network)."""

from __future__ import annotations

import html
from collections import deque
from typing import TYPE_CHECKING

from ..graph import (
    EventNode,
    ExternalNode,
    ResourceNode,
    RunGraph,
    StepNode,
    WorkflowGraph,
    mermaid,
    run_summary,
    step_summary,
    workflow_graph,
)
from ._errors import CliError

if TYPE_CHECKING:
    from pathlib import Path

    from ..graph import Node
    from ..workflow import Workflow

__all__ = ["check_output", "draw", "html_page", "layers"]

_W, _H, _GAP_X, _GAP_Y, _MARGIN, _LANE = 180, 44, 40, 70, 30, 16
_H_RUN = 58
"""A run's drawing has a second line in each step: how its attempts went."""


def layers(graph: WorkflowGraph) -> list[list[str]]:
    """Node ids in layers: a node sits one layer below the nearest node with
    an edge into it, counting from the nodes nothing points to (or the first
    node, when every node has an edge in); unreached nodes go last."""
    ids = [node.id for node in graph.nodes]
    into: dict[str, set[str]] = {i: set() for i in ids}
    out: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph.edges:
        if edge.source in out and edge.target in into:
            out[edge.source].append(edge.target)
            into[edge.target].add(edge.source)
    roots = [i for i in ids if not into[i]] or ids[:1]
    depth = dict.fromkeys(roots, 0)
    queue = deque(roots)
    while queue:
        here = queue.popleft()
        for there in out[here]:
            if there not in depth:
                depth[there] = depth[here] + 1
                queue.append(there)
    last = max(depth.values(), default=-1)
    for i in ids:
        depth.setdefault(i, last + 1)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for i in ids:
        rows[depth[i]].append(i)
    return rows


def _svg(graph: WorkflowGraph, run: RunGraph | None = None) -> str:
    h = _H if run is None else _H_RUN
    rows = layers(graph)
    content = max((len(row) for row in rows), default=1) * (_W + _GAP_X) - _GAP_X + 2 * _MARGIN
    height = len(rows) * (h + _GAP_Y) - _GAP_Y + 2 * _MARGIN
    where: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        offset = (content - (len(row) * (_W + _GAP_X) - _GAP_X)) / 2
        for c, node_id in enumerate(row):
            where[node_id] = (offset + c * (_W + _GAP_X), _MARGIN + r * (h + _GAP_Y))
    drawn = [e for e in graph.edges if e.source in where and e.target in where]
    # An edge that goes up or sideways (a loop) runs in a lane of its own on
    # the right, leaving its source just below it and entering its target from
    # above, so it crosses no node.
    back = [e for e in drawn if where[e.target][1] <= where[e.source][1]]
    width = content + _LANE * len(back)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{html.escape(graph.name)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for edge in drawn:
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        sx, tx = x1 + _W / 2, x2 + _W / 2
        if edge in back:
            k = back.index(edge)
            lane = content - _MARGIN + _LANE * (k + 1)
            below, above = y1 + h + 10 + 6 * (k % 4), y2 - 10 - 6 * (k % 4)
            d = f"M{sx:.0f},{y1 + h:.0f} V{below:.0f} H{lane:.0f} V{above:.0f} "
            d += f"H{tx:.0f} V{y2:.0f}"
        else:  # downwards: bottom to top
            top, bottom = y1 + h, y2
            d = f"M{sx:.0f},{top:.0f} C{sx:.0f},{top + 35:.0f} {tx:.0f},{bottom - 35:.0f} "
            d += f"{tx:.0f},{bottom:.0f}"
        label = f"<title>{html.escape(edge.label)}</title>" if edge.label else ""
        parts.append(
            f'<path class="edge" data-source="{html.escape(edge.source)}" '
            f'data-target="{html.escape(edge.target)}" d="{d}" fill="none" stroke="#555" '
            f'marker-end="url(#arrow)">{label}</path>'
        )
    for node in graph.nodes:
        parts.append(_node(node, *where[node.id], h, run))
    parts.append("</svg>")
    return "\n".join(parts)


def _node(node: Node, x: float, y: float, h: int, run: RunGraph | None) -> str:
    """One node: a box, its label and, in a run's drawing, what the run did there."""
    if isinstance(node, StepNode):
        fill, rx = "#dbeafe", 4
    elif isinstance(node, EventNode):
        fill, rx = ("#dcfce7" if node.is_a("StartEvent", "StopEvent") else "#fef9c3"), 22
    elif isinstance(node, ExternalNode):
        fill, rx = "#fce7f3", 22
    else:
        fill, rx = "#ede9fe", 10
    stroke, width, classes, data = "#333", 1, ["node"], ""
    label, detail = node.label, ""
    tooltip = (
        getattr(node, "description", None) if isinstance(node, StepNode | ResourceNode) else None
    )
    if run is not None and isinstance(node, StepNode):
        activity = run.steps[node.id]
        if activity.order is not None:
            label = f"{activity.order}. {node.label}"
        detail = step_summary(activity)
        data = (
            f' data-started="{activity.started}" data-succeeded="{activity.succeeded}" '
            f'data-failed="{activity.failed}" data-order="{activity.order or ""}"'
        )
        if node.id == run.failed_step:
            classes.append("failed")
            fill, stroke, width = "#fee2e2", "#b91c1c", 3
            tooltip = run.error
        elif node.id in run.active:
            classes.append("active")
            stroke, width = "#d97706", 3
        elif not activity.ran:
            classes.append("not-run")
        else:
            classes.append("ran")
        if activity.last_error and node.id != run.failed_step:
            tooltip = f"last failed attempt: {activity.last_error}"
    elif run is not None and isinstance(node, EventNode):
        seen = run.events.get(node.id, 0)
        data = f' data-count="{seen}"'
        if seen:
            label = f"{node.label} \N{MULTIPLICATION SIGN}{seen}"
            classes.append("ran")
        else:
            classes.append("not-run")
    title = f"<title>{html.escape(tooltip)}</title>" if tooltip else ""
    faded = ' opacity="0.4" stroke-dasharray="5 4"' if "not-run" in classes else ""
    text_y = y + (h / 2 + 5 if not detail else h / 2 - 3)
    lines = [
        f'<text x="{x + _W / 2:.0f}" y="{text_y:.0f}" text-anchor="middle" '
        f'font-family="sans-serif" font-size="14">{html.escape(label)}</text>'
    ]
    if detail:
        lines.append(
            f'<text class="detail" x="{x + _W / 2:.0f}" y="{y + h / 2 + 14:.0f}" '
            f'text-anchor="middle" font-family="sans-serif" font-size="11" '
            f'fill="#444">{html.escape(detail)}</text>'
        )
    return (
        f'<g class="{" ".join(classes)}" data-node-type="{node.node_type}" '
        f'data-id="{html.escape(node.id)}"{data}{faded}>{title}'
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{_W}" height="{h}" rx="{rx}" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>{"".join(lines)}</g>'
    )


def html_page(graph: WorkflowGraph | RunGraph) -> str:
    """A page that shows the graph (or a run over it) with nothing fetched:
    open it from disk, offline."""
    run = graph if isinstance(graph, RunGraph) else None
    shape = graph.graph if isinstance(graph, RunGraph) else graph
    name = html.escape(shape.name)
    heading = (
        name if run is None or run.run_id is None else f"{name}: run {html.escape(run.run_id)}"
    )
    about = f"<p>{html.escape(shape.description)}</p>" if shape.description else ""
    legend = (
        "<p class=legend>steps: squared boxes; events: round (start and stop in green); "
        "outside the run: pink; resources: violet.</p>"
    )
    overlay = "" if run is None else _run_section(run)
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{heading}</title>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        "<style>body{font-family:sans-serif;margin:2em}.legend{color:#555}"
        ".run-summary{font-weight:bold}.run-summary.failed,.run-summary.timed_out{color:#b91c1c}"
        ".run-steps{border-collapse:collapse;margin-bottom:1em}"
        ".run-steps td,.run-steps th{padding:2px 10px;text-align:left}"
        ".run-steps tr.failed{color:#b91c1c}.run-steps tr.not-run{color:#999}</style>"
        f"</head><body><h1>{heading}</h1>{about}{overlay}{legend}\n"
        f"{_svg(shape, run)}\n</body></html>\n"
    )


def _run_section(run: RunGraph) -> str:
    """The run in words above its drawing: how it ended, then its steps in
    the order they first ran (those that never ran last)."""
    rows = []
    for name in [*run.order(), *(n for n, a in run.steps.items() if not a.ran)]:
        activity = run.steps[name]
        kind = "failed" if name == run.failed_step else "ran" if activity.ran else "not-run"
        error = (run.error if name == run.failed_step else activity.last_error) or ""
        rows.append(
            f'<tr class={kind} data-step="{html.escape(name)}">'
            f"<td>{activity.order or ''}<td>{html.escape(name)}<td>{activity.started}"
            f"<td>{activity.succeeded}<td>{activity.failed}<td>{html.escape(error)}</tr>"
        )
    legend = (
        "<p class=legend>numbers: the order in which steps first ran; red: the step that "
        "failed the run; faded: never reached.</p>"
    )
    return (
        f"<p class='run-summary {run.status}'>{html.escape(run_summary(run))}</p>"
        "<table class=run-steps><tr><th>order<th>step<th>attempts<th>ok<th>failed"
        f"<th>error</tr>{''.join(rows)}</table>{legend}"
    )


def check_output(output: Path) -> None:
    """:raises CliError: unless ``output`` ends in .mmd or .html (checked before
    anything is read, so a typo costs nothing)."""
    if output.suffix not in (".mmd", ".html", ".htm"):
        raise CliError(
            f"cannot tell what to draw from {output.name!r}: end the file name in "
            ".mmd (Mermaid text) or .html (a page that opens offline)"
        )


def draw(workflow: Workflow, output: Path, run: RunGraph | None = None) -> str:
    """Write the drawing (of ``run``, if given) to ``output`` (by its suffix);
    return what was written.

    :raises CliError: for a suffix other than .mmd or .html.
    """
    check_output(output)
    graph: WorkflowGraph | RunGraph = workflow_graph(workflow) if run is None else run
    text = mermaid(graph) if output.suffix == ".mmd" else html_page(graph)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        # from None: the command prints the message alone; a traceback is for bugs
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    return text
