"""``anyflow draw``: a workflow's graph as Mermaid text or a self-contained
HTML page (an inline SVG laid out here, in layers: no script, no network)."""

from __future__ import annotations

import html
from collections import deque
from typing import TYPE_CHECKING

from ..graph import EventNode, ExternalNode, ResourceNode, StepNode, mermaid, workflow_graph
from ._errors import CliError

if TYPE_CHECKING:
    from pathlib import Path

    from ..graph import WorkflowGraph
    from ..workflow import Workflow

__all__ = ["draw", "html_page", "layers"]

_W, _H, _GAP_X, _GAP_Y, _MARGIN, _LANE = 180, 44, 40, 70, 30, 16


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


def _svg(graph: WorkflowGraph) -> str:
    rows = layers(graph)
    content = max((len(row) for row in rows), default=1) * (_W + _GAP_X) - _GAP_X + 2 * _MARGIN
    height = len(rows) * (_H + _GAP_Y) - _GAP_Y + 2 * _MARGIN
    where: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        offset = (content - (len(row) * (_W + _GAP_X) - _GAP_X)) / 2
        for c, node_id in enumerate(row):
            where[node_id] = (offset + c * (_W + _GAP_X), _MARGIN + r * (_H + _GAP_Y))
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
            below, above = y1 + _H + 10 + 6 * (k % 4), y2 - 10 - 6 * (k % 4)
            d = f"M{sx:.0f},{y1 + _H:.0f} V{below:.0f} H{lane:.0f} V{above:.0f} "
            d += f"H{tx:.0f} V{y2:.0f}"
        else:  # downwards: bottom to top
            top, bottom = y1 + _H, y2
            d = f"M{sx:.0f},{top:.0f} C{sx:.0f},{top + 35:.0f} {tx:.0f},{bottom - 35:.0f} "
            d += f"{tx:.0f},{bottom:.0f}"
        label = f"<title>{html.escape(edge.label)}</title>" if edge.label else ""
        parts.append(
            f'<path class="edge" data-source="{html.escape(edge.source)}" '
            f'data-target="{html.escape(edge.target)}" d="{d}" fill="none" stroke="#555" '
            f'marker-end="url(#arrow)">{label}</path>'
        )
    for node in graph.nodes:
        x, y = where[node.id]
        if isinstance(node, StepNode):
            fill, rx = "#dbeafe", 4
        elif isinstance(node, EventNode):
            fill, rx = ("#dcfce7" if node.is_a("StartEvent", "StopEvent") else "#fef9c3"), 22
        elif isinstance(node, ExternalNode):
            fill, rx = "#fce7f3", 22
        else:
            fill, rx = "#ede9fe", 10
        title = ""
        description = getattr(node, "description", None)
        if isinstance(node, StepNode | ResourceNode) and description:
            title = f"<title>{html.escape(description)}</title>"
        parts.append(
            f'<g class="node" data-node-type="{node.node_type}" data-id="{html.escape(node.id)}">'
            f"{title}"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_W}" height="{_H}" rx="{rx}" '
            f'fill="{fill}" stroke="#333"/>'
            f'<text x="{x + _W / 2:.0f}" y="{y + _H / 2 + 5:.0f}" text-anchor="middle" '
            f'font-family="sans-serif" font-size="14">{html.escape(node.label)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def html_page(graph: WorkflowGraph) -> str:
    """A page that shows the graph with nothing fetched: open it from disk, offline."""
    name = html.escape(graph.name)
    about = f"<p>{html.escape(graph.description)}</p>" if graph.description else ""
    legend = (
        "<p class=legend>steps: squared boxes; events: round (start and stop in green); "
        "outside the run: pink; resources: violet.</p>"
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{name}</title>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        "<style>body{font-family:sans-serif;margin:2em}.legend{color:#555}</style>"
        f"</head><body><h1>{name}</h1>{about}{legend}\n{_svg(graph)}\n</body></html>\n"
    )


def draw(workflow: Workflow, output: Path) -> str:
    """Write the drawing to ``output`` (by its suffix); return what was written.

    :raises CliError: for a suffix other than .mmd or .html.
    """
    graph = workflow_graph(workflow)
    if output.suffix == ".mmd":
        text = mermaid(graph)
    elif output.suffix in (".html", ".htm"):
        text = html_page(graph)
    else:
        raise CliError(
            f"cannot tell what to draw from {output.name!r}: end the file name in "
            ".mmd (Mermaid text) or .html (a page that opens offline)"
        )
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    return text
