"""The backoff checker: attempts toward an unreachable destination must thin out."""

from __future__ import annotations

import itertools
import random

import pytest

from peerlab.checkers.backoff import Outage, backs_off, node_outages
from peerlab.history import History


def times(gaps: list[float], start: float = 100.0) -> list[float]:
    return list(itertools.accumulate(gaps, initial=start))


def test_exponential_backoff_up_to_a_cap_is_valid() -> None:
    attempts = {("B", "A"): times([1, 2, 4, 8, 8, 8, 8])}
    verdict = backs_off(attempts, [Outage("A", 99.0, 160.0)], cap=8)
    assert verdict.ok, verdict.summary
    assert verdict.stats["links_judged"] == 1 and verdict.stats["attempts"] == 8
    [link] = verdict.stats["links"]
    assert link["link"] == "B -> A" and link["tries"][:3] == [1.0, 2.0, 4.0]


def test_a_fixed_rate_is_hammering() -> None:
    attempts = {("B", "A"): times([0.5] * 100)}
    verdict = backs_off(attempts, [Outage("A", 100.0, 160.0)], cap=8)
    assert verdict.valid == "invalid"
    assert "B -> A" in verdict.summary and "not backing off" in verdict.summary
    [link] = verdict.evidence["links"]
    assert link["violation"]["index"] == 1 and link["violation"]["gap"] == pytest.approx(0.5)
    assert link["violation"]["required"] == pytest.approx(0.5625)
    assert link["tries"][-1] == "... 101 in all", "evidence is capped, the count kept"


def test_a_gap_that_shrinks_or_falls_back_from_the_cap_fails() -> None:
    outage = [Outage("A", 0.0, 1000.0)]
    assert not backs_off({("B", "A"): times([1, 2, 4, 1], 0.0)}, outage, cap=8).ok
    assert not backs_off({("B", "A"): times([1, 2, 4, 8, 8, 3], 0.0)}, outage, cap=8).ok


def test_jitter_within_tolerance_passes() -> None:
    rng = random.Random(5)
    gaps = [min(2**i, 30) * rng.uniform(0.9, 1.1) for i in range(10)]
    verdict = backs_off({("C", "A"): times(gaps, 0.0)}, [Outage("A", 0.0, 500.0)], cap=30)
    assert verdict.ok, verdict.evidence


def test_only_attempts_inside_an_outage_toward_its_destination_count() -> None:
    hammering = times([0.5] * 20, 0.0)  # at a fixed rate from 0 to 10 s
    attempts = {("B", "A"): hammering, ("B", "C"): hammering}
    assert backs_off(attempts, [Outage("A", 0.0, 9.0, src="B")], cap=8).valid == "invalid"
    assert backs_off(attempts, [Outage("A", 0.0, 9.0, src="D")], cap=8).valid == "unknown"
    quiet = backs_off(attempts, [Outage("A", 20.0, 80.0)], cap=8)
    assert quiet.valid == "unknown", "no attempt while A was down: nothing to judge"


def test_two_attempts_cannot_show_a_rate() -> None:
    attempts = {("B", "A"): [10.0, 10.5], ("C", "A"): times([1, 2, 4], 10.0)}
    verdict = backs_off(attempts, [Outage("A", 0.0, 60.0)], cap=8)
    assert verdict.ok and verdict.stats["links_judged"] == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="cap"):
        backs_off({}, [], cap=0)


def test_outages_come_from_the_node_events_of_a_history() -> None:
    history = History()
    history.event("node_started", "A")
    history.event("node_killed", "A")
    history.event("node_paused", "B")
    history.event("node_restarted", "A")
    [a, b] = node_outages(history.entries(), end=99.0)
    assert (a.dst, b.dst, b.end) == ("A", "B", 99.0) and a.start <= a.end


def test_a_burst_of_attempts_is_one_try_and_cannot_hide_hammering() -> None:
    pairs = [t + d for t in times([1, 2, 4, 8, 8], 0.0) for d in (0.0, 0.03)]
    outage = [Outage("A", 0.0, 60.0)]
    verdict = backs_off({("B", "A"): pairs}, outage, cap=8)
    assert verdict.ok and verdict.stats["attempts"] == 12 and verdict.stats["tries"] == 6
    assert not backs_off({("B", "A"): pairs}, outage, cap=8, burst=0.0).ok
    every_tenth = [i / 10 for i in range(600)]
    assert not backs_off({("B", "A"): every_tenth}, outage, cap=8).ok
