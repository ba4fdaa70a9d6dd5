"""Backoff: while a destination is down or cut off, the attempts toward it thin out.

A client that retries a dead peer at a fixed rate hammers it (and everyone behind it) the
moment it comes back; GAIA's and Coral's plans ask for exponential backoff with a cap. The
input is when each attempt was made on each directed link (a connection opened, a datagram
sent: the fabric records them, `Network.attempts()`), and when each destination was
unreachable (`Outage`s: killed, paused, partitioned off). During an outage, the gaps
between consecutive attempts on a link toward it must grow until they reach the cap:

    gap[i+1] >= min(gap[i] * growth, cap) * (1 - tolerance)

so a gap may never shrink, must grow by `growth` while below the cap (exponential backoff
doubles; `growth` 1.5 and `tolerance` 0.25 leave room for jitter and for retries that wait
for the next tick of a round), and stays at least near the cap once it got there. A fixed
rate (every gap equal, below the cap) fails at its second gap.

Attempts less than `burst` seconds after the first of a run of them are one try: a
client's immediate second connection (aiohttp opens one when the first is reset, a
resolver tries two addresses) is not a retry. Gaps are measured between tries; grouping
cannot hide hammering, since a fixed rate of tries stays one.

A link with fewer than three tries in an outage cannot show a rate and passes (it did not
hammer); when no link toward a down destination had three, the verdict is "unknown":
nothing showed whether the client backs off.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry

Link = tuple[str, str]  # (src, dst): who made the attempts, toward whom
DOWN_EVENTS = ("node_killed", "node_stopped", "node_paused", "node_exited")
UP_EVENTS = ("node_started", "node_restarted", "node_resumed")
EVIDENCE_LINKS = 10
EVIDENCE_ATTEMPTS = 40


@dataclass(frozen=True)
class Outage:
    """`dst` could not be reached from `start` to `end` (seconds, the attempts' clock), by
    anyone (`src` None: down, paused) or only from `src` (a cut link)."""

    dst: str
    start: float
    end: float
    src: str | None = None

    def covers(self, link: Link) -> bool:
        src, dst = link
        return dst == self.dst and (self.src is None or self.src == src)


def node_outages(entries: Iterable[Entry], end: float) -> list[Outage]:
    """When each node was down or paused, from the history's node events (seconds on its
    clock, `Entry.time` / 1e9); one still down is down until `end`."""
    down: dict[str, float] = {}
    out = []
    for entry in entries:
        if entry.type != "event" or entry.node is None:
            continue
        if entry.f in DOWN_EVENTS:
            down.setdefault(entry.node, entry.time / 1e9)
        elif entry.f in UP_EVENTS and entry.node in down:
            out.append(Outage(entry.node, down.pop(entry.node), entry.time / 1e9))
    out += [Outage(node, start, end) for node, start in down.items()]
    return out


def backs_off_in_run(
    attempts: Iterable[Mapping[str, Any]],
    entries: Iterable[Entry],
    end: float,
    *,
    cap: float,
    protocol: str | None = None,
    growth: float = 1.5,
    tolerance: float = 0.25,
    burst: float = 0.2,
) -> Verdict:
    """`backs_off` over a run's records: the fabric's attempts (`env.net.attempts()`, of
    `protocol` only when given) and the node outages in its history (`end`: its clock now)."""
    links: dict[Link, list[float]] = {}
    for record in attempts:
        if record["src"] is None or (protocol is not None and record["protocol"] != protocol):
            continue
        links.setdefault((record["src"], record["dst"]), []).extend(record["times"])
    return backs_off(
        links,
        node_outages(entries, end),
        cap=cap,
        growth=growth,
        tolerance=tolerance,
        burst=burst,
    )


def backs_off(
    attempts: Mapping[Link, Sequence[float]],
    outages: Iterable[Outage],
    *,
    cap: float,
    growth: float = 1.5,
    tolerance: float = 0.25,
    burst: float = 0.2,
) -> Verdict:
    """Valid when, on every link toward a destination during each of its outages, the gaps
    between tries grow (by `growth`, within `tolerance`) up to `cap` seconds."""
    if cap <= 0 or growth < 1 or not 0 <= tolerance < 1 or burst < 0:
        raise ValueError(
            "cap must be positive, growth at least 1, tolerance in [0, 1), burst not negative"
        )
    outages = list(outages)
    judged: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    for link in sorted(attempts):
        times = sorted(attempts[link])
        for outage in outages:
            if not outage.covers(link):
                continue
            inside = [t for t in times if outage.start <= t <= outage.end]
            tries = _tries(inside, burst)
            if len(tries) < 3:
                continue
            report = _judge(link, outage, tries, cap, growth, tolerance)
            report["attempts_in_outage"] = len(inside)
            judged.append(report)
            if "violation" in report:
                violations.append(report)
    stats: dict[str, Any] = {
        "links_judged": len(judged),
        "attempts": sum(r["attempts_in_outage"] for r in judged),
        "tries": sum(len(r["tries"]) for r in judged),
        "cap_s": cap,
        "growth": growth,
        "tolerance": tolerance,
    }
    if violations:
        first = violations[0]
        v = first["violation"]
        return Verdict(
            "backs_off",
            "invalid",
            f"{first['link']}: {first['attempts_in_outage']} attempts ({len(first['tries'])} "
            f"tries) in "
            f"{first['outage'][1] - first['outage'][0]:.0f}s while {first['dst']} was "
            f"unreachable; gap {v['index']} was {v['gap']:.2f}s after {v['previous']:.2f}s "
            f"(at least {v['required']:.2f}s required): not backing off",
            {"links": [_capped(r) for r in violations[:EVIDENCE_LINKS]]},
            stats | {"links_violating": len(violations)},
        )
    if not judged:
        return Verdict(
            "backs_off",
            "unknown",
            "No link toward an unreachable destination carried three attempts or more: "
            "nothing shows whether the clients back off.",
            {},
            stats,
        )
    return Verdict(
        "backs_off",
        "valid",
        f"Attempts thinned out on all {len(judged)} links toward unreachable destinations.",
        {},
        stats | {"links": [_capped(r) for r in judged[:EVIDENCE_LINKS]]},
    )


def _tries(times: list[float], burst: float) -> list[float]:
    """When each try began: an attempt within `burst` of a try's first one joins it."""
    tries: list[float] = []
    for at in times:
        if not tries or at - tries[-1] >= burst:
            tries.append(at)
    return tries


def _judge(
    link: Link, outage: Outage, times: list[float], cap: float, growth: float, tolerance: float
) -> dict[str, Any]:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    report: dict[str, Any] = {
        "link": f"{link[0]} -> {link[1]}",
        "dst": link[1],
        "outage": [outage.start, outage.end],
        # Relative to the outage's start, so they read as "seconds into the outage".
        "tries": [round(t - outage.start, 3) for t in times],
        "gaps": [round(g, 3) for g in gaps],
    }
    for index in range(1, len(gaps)):
        previous, gap = gaps[index - 1], gaps[index]
        required = min(previous * growth, cap) * (1 - tolerance)
        if gap < required:
            report["violation"] = {
                "index": index,
                "at": round(times[index + 1] - outage.start, 3),
                "gap": gap,
                "previous": previous,
                "required": required,
            }
            break
    return report


def _capped(report: dict[str, Any]) -> dict[str, Any]:
    out = dict(report)
    for key in ("tries", "gaps"):
        if len(out[key]) > EVIDENCE_ATTEMPTS:
            out[key] = [*out[key][:EVIDENCE_ATTEMPTS], f"... {len(report[key])} in all"]
    return out
