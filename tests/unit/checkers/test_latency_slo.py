"""`latency_slo`: nearest-rank percentiles of ok latencies against bounds."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from peerlab.checkers import latency_slo
from peerlab.history import Entry

MS = 1_000_000


def timed(latencies_ms: Sequence[float], f: str = "read", outcome: str = "ok") -> list[Entry]:
    entries, clock = [], 0
    for number, latency in enumerate(latencies_ms):
        entries.append(Entry("invoke", f, 2 * number, clock, 0.0, number))
        entries.append(
            Entry(outcome, f, 2 * number + 1, clock + int(latency * MS), 0.0, number)  # type: ignore[arg-type]
        )
        clock += 10 * MS
    return entries


def test_within_bounds() -> None:
    verdict = latency_slo(timed([1, 2, 3, 4, 100]), percentiles={"p50": 5, "max": 150})
    assert verdict.valid == "valid"
    assert verdict.stats["observed_ms"] == {"p50": 3.0, "max": 100.0}


def test_breach_names_the_percentile_and_the_slowest_ops() -> None:
    verdict = latency_slo(timed([1] * 98 + [50, 80]), percentiles={"p50": 5, "p99": 20})
    assert verdict.valid == "invalid"
    assert verdict.evidence["breaches"] == [
        {"percentile": "p99", "observed_ms": 50.0, "bound_ms": 20}
    ]
    assert [op["latency_ms"] for op in verdict.evidence["slowest"][:2]] == [80.0, 50.0]


def test_only_ok_ops_of_the_chosen_kind_count() -> None:
    entries = timed([1, 1, 1]) + timed([500], f="write")
    assert latency_slo(entries, percentiles={"max": 2}, f="read").valid == "valid"
    assert latency_slo(entries, percentiles={"max": 2}).valid == "invalid"
    assert latency_slo(timed([500], outcome="fail"), percentiles={"max": 2}).valid == "unknown"


def test_bad_percentile_name_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"p99\.9"):
        latency_slo(timed([1]), percentiles={"99th": 1})


def test_generated_latencies_match_sorted_ranks() -> None:
    rng = random.Random(4)
    latencies = [rng.uniform(1, 100) for _ in range(1000)]
    verdict = latency_slo(timed(latencies), percentiles={"p50": 1000, "p99.9": 1000})
    ordered = sorted(round(latency * MS) / MS for latency in latencies)
    assert verdict.stats["observed_ms"]["p50"] == pytest.approx(ordered[499], abs=1e-3)
    assert verdict.stats["observed_ms"]["p99.9"] == pytest.approx(ordered[998], abs=1e-3)
