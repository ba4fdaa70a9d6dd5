"""The peer graph as inline SVG: peers, friendships, faulty links and partition sides.

networkx places the peers (a circle for small networks, a seeded spring layout for large
ones); the drawing is plain SVG so every peer and link has a hover title and a class:
`.peer`, `.friend` (`.mutual` when both ways), `.faulty-link`, `.cut` (a friendship a
partition cut).
"""

from __future__ import annotations

from html import escape
from typing import Any

import networkx as nx

from peerlab.observe.render import node_index
from peerlab.report.data import RunData

SIZE = (560, 440)
MARGIN = 48
_GROUP_COLOURS = ("#3b7dd8", "#2e9d5b", "#9b59b6", "#e07b06", "#16a2b8", "#c0392b")
_STATE_COLOUR = {"running": "#2e9d5b", "paused": "#e0a106", "starting": "#16a2b8"}


def _layout(names: list[str], edges: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_edges_from(edges)
    if len(names) <= 16:
        return dict(nx.circular_layout(graph))
    return dict(nx.spring_layout(graph, seed=seed % (2**32)))


def render_graph(run: RunData) -> str:
    graph = run.graph()
    names = [str(n["name"]) for n in graph.get("nodes", []) if n.get("name")]
    states = {str(n["name"]): str(n.get("state", "")) for n in graph.get("nodes", [])}
    directed = {(str(a), str(b)) for a, b in graph.get("friends", [])}
    names += sorted({n for pair in directed for n in pair if n not in names}, key=node_index)
    if not names:
        return '<p class="empty">No peers were recorded.</p>'
    undirected: dict[tuple[str, str], bool] = {}
    for a, b in directed:
        key = (a, b) if node_index(a) <= node_index(b) else (b, a)
        undirected[key] = undirected.get(key, False) or (b, a) in directed
    seed = int(run.result.get("seed") or 0)
    positions = _layout(names, list(undirected), seed)
    width, height = SIZE

    def at(name: str) -> tuple[float, float]:
        x, y = positions[name]
        return (
            MARGIN + (float(x) + 1) / 2 * (width - 2 * MARGIN),
            MARGIN + (float(y) + 1) / 2 * (height - 2 * MARGIN),
        )

    # The last partition of the run decides the sides drawn; link faults are all marked.
    partitions = [s for s in run.faults if s.kind == "partition" and s.detail.get("groups")]
    groups: list[list[str]] = partitions[-1].detail["groups"] if partitions else []
    side = {name: index for index, group in enumerate(groups) for name in group}
    link_faults: dict[tuple[str, str], list[str]] = {}
    wildcard: dict[str, list[str]] = {}
    for span in run.faults:
        if span.kind != "link":
            continue
        src, dst = span.detail.get("src"), span.detail.get("dst")
        if src and dst:
            link_faults.setdefault((str(src), str(dst)), []).append(span.label)
        else:
            for end in (src, dst):
                if end:
                    wildcard.setdefault(str(end), []).append(span.label)
            if not src and not dst:
                wildcard.setdefault("*", []).append(span.label)

    out = [
        f'<svg id="peer-graph" class="peer-graph" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="peer graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="22" '
        f'refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="#999"/></marker></defs>'
    ]
    for (a, b), mutual in sorted(undirected.items()):
        (x1, y1), (x2, y2) = at(a), at(b)
        cut = bool(groups) and _cut(a, b, groups, partitions[-1].detail.get("one_way", False))
        classes = "friend" + (" mutual" if mutual else "") + (" cut" if cut else "")
        style = 'stroke="#d93b3b" stroke-dasharray="2 4"' if cut else 'stroke="#9aa3ad"'
        arrow = "" if mutual else ' marker-end="url(#arrow)"'
        title = f"{a} {'<->' if mutual else '->'} {b} friends" + (
            ", cut by the partition" if cut else ""
        )
        out.append(
            f'<line class="{classes}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" '
            f'y2="{y2:.1f}" {style} stroke-width="1.6"{arrow}>'
            f"<title>{escape(title)}</title></line>"
        )
    for (a, b), labels in sorted(link_faults.items()):
        if a not in positions or b not in positions:
            continue
        (x1, y1), (x2, y2) = at(a), at(b)
        title = f"{a} -> {b}: " + "; ".join(labels)
        out.append(
            f'<g class="faulty-link"><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" '
            f'y2="{y2:.1f}" stroke="#e07b06" stroke-width="4" stroke-opacity="0.8" '
            f'stroke-dasharray="8 4"><title>{escape(title)}</title></line>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 4:.1f}" '
            f'text-anchor="middle" font-size="10" fill="#b35a00">'
            f"{escape(labels[-1])}</text></g>"
        )
    for name in names:
        x, y = at(name)
        fill = _GROUP_COLOURS[side[name] % len(_GROUP_COLOURS)] if name in side else "#5b6770"
        ring = _STATE_COLOUR.get(states.get(name, ""), "#d93b3b")
        notes = wildcard.get(name, []) + wildcard.get("*", [])
        title = f"{name}: {states.get(name) or 'unknown state'}"
        if name in side:
            title += f", partition side {side[name] + 1}"
        if notes:
            title += "; faults on all its links: " + "; ".join(notes)
        dashed = ' stroke-dasharray="4 2"' if notes else ""
        out.append(
            f'<g class="peer" data-node="{escape(name)}"><circle cx="{x:.1f}" '
            f'cy="{y:.1f}" r="15" fill="{fill}" stroke="{ring}" stroke-width="3"'
            f"{dashed}/>"
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" fill="#fff" '
            f'font-weight="bold" font-size="12">{escape(name)}</text>'
            f"<title>{escape(title)}</title></g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _cut(a: str, b: str, groups: list[list[str]], one_way: bool) -> bool:
    if one_way:
        return (a in groups[0] and b in groups[1]) or (b in groups[0] and a in groups[1])
    return not any(a in group and b in group for group in groups)
