"""The report's timeline as inline SVG: nodes as lanes, operations as bars, faults as spans.

Drawn by hand rather than by a plotting library so that every mark is an element a reader
can hover (its <title> says what it was) and a test can find by class:

    .fault-span   a fault's bar in the fault band, labelled (partition, latency ...)
    .fault-shade  the same fault shaded over the lanes it touches
    .down-span    a node killed, stopped, exited or paused, until it came back
    .op           an operation from invocation to completion (.op-ok, .op-fail, .op-info)
    .evidence     an operation an invalid verdict cites
    .node-event   a node started, killed, restarted ...
    .log-mark     a warning or error in a node's log
    .verdict-mark a verdict, when it was recorded (.invalid ones are red)
    .failure-mark when the test failed
    .evidence-lane the label of a node an invalid verdict names
"""

from __future__ import annotations

import math
from html import escape

from peerlab.history import Operation
from peerlab.report.data import RunData, Span

WIDTH = 1200
LEFT = 80
RIGHT = 24
AXIS = 26
ROW = 9  # height of one row of operation bars
MAX_ROWS = 4
FAULT_ROW = 16
VERDICT_ROW = 18
MAX_LOG_MARKS = 3000

_OP_COLOUR = {"ok": "#2e9d5b", "fail": "#d93b3b", "info": "#e0a106", "open": "#8a8a8a"}
_EVENT_SHAPE = {
    "node_started": ("▲", "#2e9d5b"),
    "node_restarted": ("▲", "#2e9d5b"),
    "node_resumed": ("▶", "#2e9d5b"),
    "node_killed": ("✕", "#d93b3b"),
    "node_exited": ("✕", "#d93b3b"),
    "node_stopped": ("■", "#a33"),
    "node_paused": ("❚❚", "#e0a106"),
    "snapshot_saved": ("◆", "#5566cc"),
    "snapshot_restored": ("◆", "#5566cc"),
}


class _Scale:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.span = max(end - start, 1e-3)

    def x(self, wall: float) -> float:
        clamped = min(max(wall, self.start), self.end)
        return LEFT + (clamped - self.start) / self.span * (WIDTH - LEFT - RIGHT)


def _nice_step(span: float) -> float:
    raw = span / 10
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _pack(intervals: list[tuple[float, float]], limit: int) -> list[int]:
    """Greedy rows for intervals (x0, x1) so that bars in a row do not overlap."""
    ends: list[float] = []
    rows = []
    for x0, x1 in intervals:
        for row, end in enumerate(ends):
            if x0 >= end + 1:
                ends[row] = x1
                rows.append(row)
                break
        else:
            if len(ends) < limit:
                ends.append(x1)
                rows.append(len(ends) - 1)
            else:
                rows.append(limit - 1)
    return rows


def _op_title(op: Operation, cited: list[str]) -> str:
    took = f"{op.latency_ns / 1e6:.1f} ms" if op.latency_ns is not None else "no answer"
    words = [
        f"{op.f} on {op.node or op.process}: {op.type} ({took})",
        f"value: {op.invoke.value!r}"[:300],
    ]
    if op.completion is not None and op.completion.error:
        words.append(f"error: {op.completion.error}"[:300])
    words.append(f"history index {op.invoke.index}")
    if cited:
        words.append("evidence of: " + ", ".join(cited))
    return "\n".join(words)


def render_timeline(run: RunData) -> str:
    scale = _Scale(run.start, run.end)
    lanes = run.lanes or ["(no nodes)"]
    # Operations per lane, packed into rows.
    per_lane: dict[str, list[Operation]] = {lane: [] for lane in lanes}
    for op in run.ops:
        lane = str(op.node or op.process)
        per_lane.setdefault(lane, []).append(op)
    if len(per_lane) > len(lanes):
        lanes = list(per_lane)
    end_of = {
        id(op): (op.completion.wall if op.completion is not None else run.end) for op in run.ops
    }
    packed: dict[str, list[int]] = {}
    for lane, ops in per_lane.items():
        packed[lane] = _pack(
            [
                (scale.x(op.invoke.wall), max(scale.x(end_of[id(op)]), scale.x(op.invoke.wall) + 2))
                for op in ops
            ],
            MAX_ROWS,
        )
    heights = {lane: 14 + max([*packed.get(lane, []), 0]) * ROW + ROW for lane in lanes}
    fault_rows = _pack([(scale.x(s.start), scale.x(s.end or run.end) + 140) for s in run.faults], 8)
    band = (max(fault_rows, default=-1) + 1) * FAULT_ROW + (6 if run.faults else 0)
    checks = VERDICT_ROW if run.verdicts else 0
    top = AXIS + band + checks
    lane_top: dict[str, float] = {}
    y = top
    for lane in lanes:
        lane_top[lane] = y
        y += heights[lane]
    bottom = y
    height = bottom + 22
    out = [
        f'<svg id="timeline" class="timeline" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
        f'aria-label="timeline of the run">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" '
        'stroke="#d93b3b" stroke-width="2" stroke-opacity="0.35"/></pattern>'
        '<pattern id="down" width="5" height="5" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(-45)"><line x1="0" y1="0" x2="0" y2="5" stroke="#777" '
        'stroke-width="1.5" stroke-opacity="0.5"/></pattern></defs>',
    ]
    # Lanes.
    for index, lane in enumerate(lanes):
        fill = "#f6f7f9" if index % 2 == 0 else "#ffffff"
        ly = lane_top[lane]
        cited = lane in run.evidence_nodes
        label, classes, colour, note = (lane, "lane-label", "#333", "")
        if cited:
            fill = "#fff0f0"
            label, classes, colour = f"⚠ {lane}", "lane-label evidence-lane", "#c00"
            note = "<title>named by an invalid verdict</title>"
        out.append(
            f'<g class="lane" data-node="{escape(lane)}">'
            f'<rect x="0" y="{ly:.1f}" width="{WIDTH}" height="{heights[lane]}" '
            f'fill="{fill}"/>'
            f'<text class="{classes}" x="{LEFT - 8}" y="{ly + heights[lane] / 2 + 4:.1f}" '
            f'text-anchor="end" fill="{colour}">{escape(label)}{note}</text></g>'
        )
    # Axis and grid.
    step = _nice_step(scale.span)
    tick = 0.0
    while tick <= scale.span + 1e-9:
        x = scale.x(run.start + tick)
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS - 4}" x2="{x:.1f}" '
            f'y2="{bottom}" stroke="#dde" stroke-width="1"/>'
            f'<text class="tick" x="{x:.1f}" y="{AXIS - 8}" text-anchor="middle">'
            f"+{tick:g}s</text>"
        )
        tick += step
    # Faults: shaded over the lanes they touch, and labelled in the band above the lanes.
    for span, row in zip(run.faults, fault_rows, strict=True):
        out.append(_fault(span, row, scale, run, lane_top, heights, top, bottom))
    # Nodes down.
    for span in run.downtime:
        lane = span.name
        if lane not in lane_top:
            continue
        x0, x1 = scale.x(span.start), scale.x(span.end or run.end)
        out.append(
            f'<rect class="down-span {escape(span.label)}" x="{x0:.1f}" '
            f'y="{lane_top[lane]:.1f}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{heights[lane]}" fill="url(#down)"><title>{escape(lane)} '
            f"{escape(span.label)} for {(span.end or run.end) - span.start:.1f}s"
            f"</title></rect>"
        )
    # Log warnings and errors.
    marks = [
        e
        for e in run.timeline
        if e.kind in ("log", "output") and e.level in ("warning", "error") and e.node in lane_top
    ][:MAX_LOG_MARKS]
    for event in marks:
        x = scale.x(event.wall)
        ly = lane_top[str(event.node)]
        colour = "#d93b3b" if event.level == "error" else "#e0a106"
        out.append(
            f'<line class="log-mark {event.level}" x1="{x:.1f}" '
            f'y1="{ly + heights[str(event.node)] - 5:.1f}" x2="{x:.1f}" '
            f'y2="{ly + heights[str(event.node)] - 1:.1f}" stroke="{colour}" '
            f'stroke-width="1.5"><title>{escape(event.line()[:400])}</title></line>'
        )
    # Operations.
    for lane, ops in per_lane.items():
        for op, row in zip(ops, packed[lane], strict=True):
            out.append(
                _op(
                    op,
                    row,
                    scale,
                    lane_top[lane],
                    end_of[id(op)],
                    run.evidence.get(op.invoke.index, []),
                )
            )
    # Node events.
    for entry in run.entries:
        if entry.type != "event" or entry.node not in lane_top or entry.f not in _EVENT_SHAPE:
            continue
        glyph, colour = _EVENT_SHAPE[entry.f]
        x = scale.x(entry.wall)
        ly = lane_top[str(entry.node)] + 11
        out.append(
            f'<text class="node-event {escape(entry.f)}" x="{x:.1f}" y="{ly:.1f}" '
            f'fill="{colour}" text-anchor="middle" font-size="11">{glyph}'
            f"<title>{escape(entry.node or '')} {escape(entry.f)} at "
            f"+{entry.wall - run.start:.2f}s</title></text>"
        )
    # Verdicts, in a row of their own above the lanes.
    for verdict in run.verdicts:
        wall = verdict.get("wall")
        if not isinstance(wall, int | float):
            continue
        bad = verdict.get("valid") == "invalid"
        x = scale.x(float(wall))
        glyph, colour = ("✘", "#d93b3b") if bad else ("✔", "#2e9d5b")
        title = f"{verdict.get('checker')}: {verdict.get('valid')}: {verdict.get('summary')}"
        out.append(
            f'<text class="verdict-mark {"invalid" if bad else "valid"}" x="{x:.1f}" '
            f'y="{top - 5:.1f}" fill="{colour}" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{glyph}<title>{escape(title[:500])}</title></text>'
        )
    # When the test failed.
    failure = run.failure
    if failure and isinstance(failure.get("wall"), int | float):
        x = scale.x(float(failure["wall"]))
        full = str(failure.get("message") or "failed").splitlines()[0]
        message = full if len(full) <= 110 else full[:109] + "…"
        out.append(
            f'<g class="failure-mark"><line x1="{x:.1f}" y1="{AXIS - 4}" '
            f'x2="{x:.1f}" y2="{bottom}" stroke="#d93b3b" stroke-width="2" '
            f'stroke-dasharray="6 3"/><text x="{min(x, WIDTH - 4):.1f}" '
            f'y="{bottom + 15}" text-anchor="end" fill="#d93b3b" font-weight="bold">'
            f"✘ {escape(message)}</text><title>{escape(full)}</title></g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _fault(
    span: Span,
    row: int,
    scale: _Scale,
    run: RunData,
    lane_top: dict[str, float],
    heights: dict[str, int],
    top: float,
    bottom: float,
) -> str:
    x0, x1 = scale.x(span.start), scale.x(span.end or run.end)
    width = max(x1 - x0, 2)
    lasting = f"{(span.end or run.end) - span.start:.1f}s" + ("" if span.end else ", to the end")
    title = escape(f"{span.label} ({lasting}) from +{span.start - run.start:.2f}s")
    partition = span.kind == "partition"
    colour = "#d93b3b" if partition else "#e07b06"
    parts = [f'<g class="fault {span.kind}" data-fault="{escape(span.name)}">']
    by = AXIS + row * FAULT_ROW
    parts.append(
        f'<rect class="fault-span {span.kind}" x="{x0:.1f}" y="{by:.1f}" '
        f'width="{width:.1f}" height="{FAULT_ROW - 3}" rx="3" fill="{colour}" '
        f'fill-opacity="0.85"><title>{title}</title></rect>'
    )
    parts.append(
        f'<text class="fault-label" x="{x0 + 4:.1f}" y="{by + FAULT_ROW - 6:.1f}" '
        f'fill="#fff" font-size="10" font-weight="bold">{escape(span.label)}</text>'
    )
    lanes = span.nodes if span.nodes is not None else None
    if lanes is None:
        parts.append(
            f'<rect class="fault-shade {span.kind}" x="{x0:.1f}" y="{top:.1f}" '
            f'width="{width:.1f}" height="{bottom - top:.1f}" '
            f'fill="{"url(#hatch)" if partition else colour}" '
            f'fill-opacity="{1 if partition else 0.12}"><title>{title}</title></rect>'
        )
    else:
        for lane in lanes:
            if lane in lane_top:
                parts.append(
                    f'<rect class="fault-shade {span.kind}" x="{x0:.1f}" '
                    f'y="{lane_top[lane]:.1f}" width="{width:.1f}" '
                    f'height="{heights[lane]}" fill="{colour}" fill-opacity="0.16">'
                    f"<title>{title}</title></rect>"
                )
    parts.append("</g>")
    return "".join(parts)


def _op(op: Operation, row: int, scale: _Scale, lane_y: float, end: float, cited: list[str]) -> str:
    x0 = scale.x(op.invoke.wall)
    x1 = max(scale.x(end), x0 + 2)
    y = lane_y + 14 + row * ROW
    kind = "open" if op.completion is None else op.type
    classes = f"op op-{kind}" + (" evidence" if cited else "")
    stroke = ' stroke="#000" stroke-width="1.5"' if cited else ""
    body = (
        f'<rect class="{classes}" id="op-{op.invoke.index}" x="{x0:.1f}" y="{y:.1f}" '
        f'width="{x1 - x0:.1f}" height="{ROW - 2}" rx="1.5" fill="{_OP_COLOUR[kind]}"'
        f"{stroke}><title>{escape(_op_title(op, cited))}</title></rect>"
    )
    if cited:
        body += (
            f'<text class="evidence-label" x="{x0:.1f}" y="{y - 1:.1f}" font-size="9" '
            f'fill="#b00" font-weight="bold">⚠ {escape(op.f)}</text>'
        )
    return body
