"""Plots of a run for its report: operation latency and throughput over time, faults shaded.

matplotlib draws them into PNG images embedded as data URIs, so the report needs nothing
but itself. `matplotlib.figure.Figure` is used directly (not pyplot): no GUI backend, no
global state, safe in a supervisor's worker thread.
"""

from __future__ import annotations

import base64
import io
import math
from collections import defaultdict

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from peerlab.report.data import RunData

_TYPE_COLOUR = {"ok": "#2e9d5b", "fail": "#d93b3b", "info": "#e0a106"}


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _shade_faults(axes: Axes, run: RunData) -> None:
    for number, span in enumerate(run.faults[:12]):
        end = (span.end or run.end) - run.start
        colour = "#d93b3b" if span.kind == "partition" else "#e07b06"
        axes.axvspan(span.start - run.start, end, color=colour, alpha=0.12, lw=0)
        # Labels step down the plot so faults that start together stay readable.
        axes.annotate(
            span.label,
            (span.start - run.start, 0.97 - 0.08 * number),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color=colour,
            va="top",
            xytext=(3, 0),
            textcoords="offset points",
        )


def latency_plot(run: RunData) -> str | None:
    """Each completed operation at its completion time, by its latency (ms, log scale)."""
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for op in run.ops:
        if op.completion is None:
            continue
        latency = (op.completion.wall - op.invoke.wall) * 1000
        points[op.f].append((op.completion.wall - run.start, max(latency, 1e-3), op.type))
    if not points:
        return None
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    markers = "os^Dv<>p*h"
    for number, (name, values) in enumerate(sorted(points.items())):
        axes.scatter(
            [v[0] for v in values],
            [v[1] for v in values],
            s=14,
            marker=markers[number % len(markers)],
            c=[_TYPE_COLOUR.get(v[2], "#888") for v in values],
            label=name,
            alpha=0.8,
        )
    latencies = [v[1] for values in points.values() for v in values]
    if max(latencies) / max(min(latencies), 1e-3) > 50:
        axes.set_yscale("log")
    axes.set_xlim(0, run.end - run.start)
    axes.set_xlabel("seconds since the run began")
    axes.set_ylabel("latency (ms)")
    axes.grid(alpha=0.3)
    axes.legend(
        loc="upper left", fontsize=8, title="operation (colour: ok / fail / info)", title_fontsize=7
    )
    _shade_faults(axes, run)
    return _png(figure)


def throughput_plot(run: RunData) -> str | None:
    """Completed operations per time bucket, stacked by outcome."""
    completed = [op for op in run.ops if op.completion is not None]
    if not completed:
        return None
    span = max(run.end - run.start, 1e-3)
    bucket = max(span / 60, 0.1)
    count = math.ceil(span / bucket) + 1
    series = {kind: [0] * count for kind in ("ok", "fail", "info")}
    for op in completed:
        assert op.completion is not None
        slot = int((op.completion.wall - run.start) / bucket)
        series[op.type][min(max(slot, 0), count - 1)] += 1
    figure = Figure(figsize=(9, 2.6))
    axes = figure.add_subplot()
    lefts = [i * bucket for i in range(count)]
    bottom = [0.0] * count
    for kind, values in series.items():
        rates = [v / bucket for v in values]
        if any(rates):
            axes.bar(
                lefts,
                rates,
                width=bucket,
                bottom=bottom,
                align="edge",
                color=_TYPE_COLOUR[kind],
                label=kind,
                alpha=0.85,
            )
            bottom = [b + r for b, r in zip(bottom, rates, strict=True)]
    axes.set_xlim(0, span)
    axes.set_xlabel("seconds since the run began")
    axes.set_ylabel("operations / s")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="upper right", fontsize=8)
    _shade_faults(axes, run)
    return _png(figure)
