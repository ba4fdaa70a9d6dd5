"""Latency SLO: percentiles of acknowledged operations' latency stay within bounds.

Latency is completion time minus invocation time of `ok` operations (failed ones did
not happen; unknown ones never completed). Percentiles use the nearest-rank method, so
each reported value is a latency that really occurred.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry, Operation, as_operations

SLOWEST = 5
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def latency_slo(
    history: Iterable[Entry] | Iterable[Operation],
    *,
    percentiles: Mapping[str, float],
    f: str | Iterable[str] | None = None,
) -> Verdict:
    """Check latency percentiles against bounds in milliseconds, e.g. {"p50": 20, "p99": 200}.

    Names are "p" plus a number in (0, 100] ("p99.9"), or "max". `f` limits the check to
    operations of that kind (or kinds).
    """
    quantiles = {name: _quantile(name) for name in percentiles}
    kinds = {f} if isinstance(f, str) else None if f is None else set(f)
    timed = sorted(
        (
            (op.latency_ns / 1e6, op)
            for op in as_operations(history)
            if op.type == "ok" and op.latency_ns is not None and (kinds is None or op.f in kinds)
        ),
        key=lambda pair: pair[0],
    )
    latencies = [latency for latency, _ in timed]
    if not latencies:
        return Verdict("latency-slo", "unknown", "No acknowledged operations to time.", {}, {})
    observed = {name: _nearest_rank(latencies, q) for name, q in quantiles.items()}
    stats: dict[str, Any] = {
        "operations": len(latencies),
        "mean_ms": round(sum(latencies) / len(latencies), 3),
        "max_ms": round(latencies[-1], 3),
        "observed_ms": {name: round(value, 3) for name, value in observed.items()},
    }
    breaches = [
        {"percentile": name, "observed_ms": round(observed[name], 3), "bound_ms": bound}
        for name, bound in percentiles.items()
        if observed[name] > bound
    ]
    if not breaches:
        shown = ", ".join(f"{n} {observed[n]:.1f} ms ≤ {b}" for n, b in percentiles.items())
        return Verdict("latency-slo", "valid", f"Within bounds: {shown}.", {}, stats)
    slowest = [
        {**op.to_json(), "latency_ms": round(latency, 3)} for latency, op in timed[-SLOWEST:][::-1]
    ]
    shown = ", ".join(
        f"{b['percentile']} {b['observed_ms']:.1f} ms > {b['bound_ms']}" for b in breaches
    )
    return Verdict(
        "latency-slo",
        "invalid",
        f"Over {len(latencies)} operations, {shown}.",
        {"breaches": breaches, "slowest": slowest},
        stats,
    )


def _quantile(name: str) -> float:
    if name == "max":
        return 100.0
    match = _PERCENTILE.fullmatch(name)
    if match is None or not 0 < float(match.group(1)) <= 100:
        raise ValueError(f"percentile {name!r}: write it as p50, p99, p99.9 or max")
    return float(match.group(1))


def _nearest_rank(ordered: list[float], quantile: float) -> float:
    # Rounding first keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) off the rank.
    rank = max(1, math.ceil(round(quantile / 100 * len(ordered), 9)))
    return ordered[rank - 1]
