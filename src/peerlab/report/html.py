"""`peerlab report RUN --html`: one self-contained HTML file for a run.

Summary and verdicts, the timeline (nodes as lanes, operations as bars, faults as shaded
spans, the evidence of invalid verdicts marked), the peer graph, latency and throughput
plots, checker evidence as tables, the merged log, and the replay command. CSS and script
are inline, plots are data URIs and drawings inline SVG: the file opens without a network.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from peerlab.fabric.attribution import describe as describe_attribution
from peerlab.observe.render import PALETTE, node_index
from peerlab.report.data import RunData, load_run
from peerlab.report.graph_svg import render_graph
from peerlab.report.plots import latency_plot, throughput_plot
from peerlab.report.runs import versions
from peerlab.report.timeline_svg import render_timeline

TEMPLATE = "report.html.j2"
MAX_LOG_ROWS = 4000
# CSS colours for the palette names the terminal uses, so a node has one colour everywhere.
_CSS = {
    "cyan": "#0f8fa8",
    "magenta": "#b0379b",
    "green": "#2a8a3e",
    "yellow": "#a88a00",
    "blue": "#2f5fd0",
    "bright_red": "#d23c3c",
    "bright_cyan": "#1aa6b7",
    "bright_magenta": "#c04fc0",
    "bright_green": "#3aa655",
    "orange3": "#c46d00",
    "deep_sky_blue1": "#0a8fd8",
    "medium_purple1": "#8a6bd6",
}
_OP_COLUMNS = ("index", "node", "process", "f", "type", "value", "result", "error")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _is_op(value: Any) -> bool:
    return isinstance(value, dict) and "f" in value and "index" in value


def evidence_html(value: Any, depth: int = 0) -> Markup:
    """Checker evidence, readable: operations as tables, mappings as lists, the rest as JSON.

    An operation's index links to its bar on the timeline.
    """
    if isinstance(value, list) and value and all(_is_op(item) for item in value):
        columns = [c for c in _OP_COLUMNS if any(c in item for item in value)]
        extra = sorted(
            {k for item in value for k in item}
            - set(_OP_COLUMNS)
            - {"complete_index", "invoke_index"}
        )
        head = "".join(f"<th>{escape(c)}</th>" for c in columns + extra)
        rows = []
        for item in value:
            cells = []
            for column in columns + extra:
                shown = escape(_value(item.get(column, "")))
                if column == "index":
                    shown = f'<a href="#op-{int(item["index"])}">#{shown}</a>'
                cells.append(f'<td class="mono">{shown}</td>')
            rows.append(f'<tr class="op-{escape(str(item.get("type", "")))}">{"".join(cells)}</tr>')
        return Markup(f'<table class="evidence-ops"><tr>{head}</tr>{"".join(rows)}</table>')
    if _is_op(value):
        return evidence_html([value], depth)
    if isinstance(value, dict) and value and depth < 4:
        items = "".join(
            f"<dt>{escape(str(key))}</dt><dd>{evidence_html(item, depth + 1)}</dd>"
            for key, item in value.items()
        )
        return Markup(f'<dl class="evidence">{items}</dl>')
    if isinstance(value, list | dict):
        if not value:
            return Markup('<span class="empty">none</span>')
        if all(not isinstance(item, list | dict) for item in value):
            return Markup(
                f'<span class="mono">{escape(", ".join(_value(i) for i in value))}</span>'
            )
        return Markup(f"<pre>{escape(json.dumps(value, indent=2, default=str))}</pre>")
    return Markup(f'<span class="mono">{escape(_value(value))}</span>')


def node_css_colour(name: str | None) -> str:
    if name is None:
        return "#333"
    return _CSS[PALETTE[node_index(name) % len(PALETTE)]]


def _context(run: RunData) -> dict[str, Any]:
    result = run.result
    verdicts = []
    for verdict in run.verdicts:
        verdicts.append(
            {
                **verdict,
                "evidence_html": evidence_html(verdict.get("evidence")),
                "stats_html": evidence_html(verdict.get("stats")),
                "valid": verdict.get("valid", "unknown"),
                "stats": verdict.get("stats"),
                "evidence": verdict.get("evidence"),
            }
        )
    # Invalid verdicts first: they are why a reader opened the report.
    verdicts.sort(key=lambda v: {"invalid": 0, "unknown": 1}.get(str(v["valid"]), 2))
    failure = dict(run.failure) if run.failure else None
    if failure is not None:
        failure.setdefault("text", None)
        failure.setdefault("when", None)
        wall = failure.get("wall")
        failure["offset"] = wall - run.start if isinstance(wall, int | float) else None
    narration = [
        {"offset": e.wall - run.start, "text": e.fields.get("text", ""), "level": e.level}
        for e in run.timeline
        if e.event == "scenario_step"
    ]
    shown = run.timeline[-MAX_LOG_ROWS:]
    log_rows = [
        {
            "offset": e.wall - run.start,
            "node": e.node or "net",
            "colour": node_css_colour(e.node),
            "text": f"{e.event} {e.text()}" + (f" trace={e.trace_id}" if e.trace_id else ""),
            "cls": "fault" if e.kind == "fault" else e.level,
        }
        for e in shown
    ]
    graph = run.graph()
    net = result.get("net") or {}
    links = [
        {**link, "attributed": describe_attribution(link.get("attribution") or {})}
        for link in net.get("links") or []
    ]
    return {
        "test": result.get("test") or run.path.name,
        "outcome": result.get("outcome", "unknown"),
        "failed": run.failed,
        "seed": result.get("seed"),
        "replay": result.get("replay") or f"peerlab up --seed {result.get('seed')}",
        "started": datetime.fromtimestamp(run.start).strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": float(result.get("seconds") or (run.end - run.start)),
        "versions": {**versions(), **(result.get("versions") or {})},
        "nodes": [
            {
                "returncode": None,
                "rss_mb": None,
                "restarts": 0,
                "system": "",
                "address": "",
                "state": "",
                **n,
            }
            for n in result.get("nodes", [])
        ],
        "faults": run.faults,
        "links": links,
        "unattributed": net.get("unattributed") or [],
        "start": run.start,
        "end": run.end,
        "op_count": len(run.ops),
        "verdicts": verdicts,
        "invalid": sum(1 for v in verdicts if v["valid"] == "invalid"),
        "failure": failure,
        "narration": narration,
        "timeline_svg": Markup(render_timeline(run)),
        "graph_svg": Markup(render_graph(run)),
        "graph_source": "the system's adapter at the end of the run"
        if graph.get("source") == "adapter"
        else "friend_add operations in the history",
        "latency_png": latency_plot(run),
        "throughput_png": throughput_plot(run),
        "op_stats": {
            name: {
                "ok": s.get("ok", 0),
                "fail": s.get("fail", 0),
                "info": s.get("info", 0),
                "latency_ms": s.get("latency_ms"),
            }
            for name, s in ((result.get("timings") or {}).get("operations") or {}).items()
        },
        "log_rows": log_rows,
        "log_total": len(run.timeline),
        "generated": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "path": str(run.path),
    }


def render_report(path: Path) -> str:
    """The HTML of the report for the results folder `path`."""
    run = load_run(path)
    return _environment().get_template(TEMPLATE).render(**_context(run))


def write_report(path: Path, out: Path | None = None) -> Path:
    target = out or path / "report.html"
    target.write_text(render_report(path), encoding="utf-8")
    return target
