"""Causal order: no peer ever shows an effect before its cause.

Observations come in two shapes. A snapshot, `{"node", "time", "visible": [items]}`, is
everything one peer showed at one time: an effect in it without its cause is a
violation. An arrival, `{"node", "time", "item"}`, says when one item first became
visible on a peer (items stay visible): an effect that arrived before its cause did (or
whose cause never arrived) is a violation. A history works too: each ok "read" is a
snapshot of its peer (`node`, else `process`) at its completion time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry, Operation, as_operations

EVIDENCE_VIOLATIONS = 20


def causal_order(
    observations: Iterable[Mapping[str, Any]] | Iterable[Entry] | Iterable[Operation],
    causes: Iterable[tuple[Hashable, Hashable]],
    *,
    f: str = "read",
) -> Verdict:
    """Check that for every (cause, effect) pair, no peer saw the effect without the cause.

    `f` names the reads to use when `observations` is a history.
    """
    causes_of: dict[Hashable, set[Hashable]] = {}
    for cause, effect in causes:
        causes_of.setdefault(effect, set()).add(cause)
    snapshots, arrivals = _observations(list(observations), f)

    # The earliest violation for each (node, cause, effect) is enough to show it.
    found: dict[tuple[Any, Hashable, Hashable], dict[str, Any]] = {}
    effects_seen = 0
    for node, when, visible in sorted(snapshots, key=lambda snapshot: snapshot[1]):
        for item in visible & causes_of.keys():
            effects_seen += 1
            for cause in causes_of[item] - visible:
                found.setdefault(
                    (node, cause, item),
                    {"node": node, "time": when, "effect": item, "cause": cause},
                )
    for node, arrived in arrivals.items():
        for effect, effect_at in arrived.items():
            if effect not in causes_of:
                continue
            effects_seen += 1
            for cause in causes_of[effect]:
                cause_at = arrived.get(cause)
                if cause_at is None or cause_at > effect_at:
                    found.setdefault(
                        (node, cause, effect),
                        {
                            "node": node,
                            "time": effect_at,
                            "effect": effect,
                            "cause": cause,
                            "cause_visible_at": cause_at,
                        },
                    )
    stats = {
        "pairs": sum(map(len, causes_of.values())),
        "snapshots": len(snapshots),
        "effects_seen": effects_seen,
    }
    if found:
        violations = sorted(found.values(), key=lambda v: (v["time"], repr(v["node"])))
        first = violations[0]
        stats["violations"] = len(violations)
        return Verdict(
            "causal-order",
            "invalid",
            f"{len(violations)} time(s) an effect was visible before its cause; first: "
            f"{first['effect']!r} on {first['node']} at {first['time']} without "
            f"{first['cause']!r}.",
            violations[:EVIDENCE_VIOLATIONS],
            stats,
        )
    if not effects_seen:
        return Verdict(
            "causal-order",
            "unknown",
            "No observation showed any effect, so causal order was never put to the test.",
            [],
            stats,
        )
    return Verdict(
        "causal-order",
        "valid",
        f"Every one of {effects_seen} sightings of an effect came with its cause.",
        [],
        stats,
    )


def _observations(
    items: list[Any], f: str
) -> tuple[list[tuple[Any, Any, set[Hashable]]], dict[Any, dict[Hashable, Any]]]:
    """(snapshots as (node, time, visible set), first arrival time per node and item)."""
    if items and all(isinstance(item, Entry | Operation) for item in items):
        items = [
            {
                "node": op.node if op.node is not None else op.process,
                "time": op.completion.time,
                "visible": op.value,
            }
            for op in as_operations(items)
            if op.f == f and op.type == "ok" and op.completion is not None
        ]
    snapshots = []
    arrivals: dict[Any, dict[Hashable, Any]] = {}
    for observation in items:
        node, when = observation["node"], observation["time"]
        if "visible" in observation:
            snapshots.append((node, when, set(observation["visible"] or ())))
        else:
            arrived = arrivals.setdefault(node, {})
            item = observation["item"]
            if item not in arrived or when < arrived[item]:
                arrived[item] = when
    return snapshots, arrivals
