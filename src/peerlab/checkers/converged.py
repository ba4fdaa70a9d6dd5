"""Convergence: after the network heals, every live peer holds the same files.

A peer's state is `{file_name: {"sha256": ..., "version": ...}}`; two peers agree on a file
when the compared fields are equal, and a file one peer has and another lacks is a
difference too. With timestamped snapshots the checker also says when the peers
converged, and `converged_within` turns that into a deadline check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from peerlab.checkers.verdict import Verdict

PeerStates = Mapping[str, Mapping[str, Mapping[str, Any]]]
# (time in seconds, the live peers' states at that time)
Snapshot = tuple[float, PeerStates]

# A divergence report lists this many files; the count says how many more there are.
EVIDENCE_FILES = 20
COMPARED = ("sha256", "version")


def convergence(
    final_states: PeerStates,
    *,
    after_heal: float | None = None,
    snapshots: Sequence[Snapshot] = (),
    fields: Sequence[str] = COMPARED,
) -> Verdict:
    """Check that all live peers in `final_states` hold the same files.

    `fields` are the file attributes compared (missing ones are ignored). Given
    `snapshots`, stats say when the peers converged for good (`converged_at`) and, with
    `after_heal` (the time the last fault was removed, same clock), how long that took.
    """
    stats: dict[str, Any] = {"peers": len(final_states)}
    if snapshots:
        converged_at = _converged_at(snapshots, fields)
        stats["converged_at"] = converged_at
        if converged_at is not None and after_heal is not None:
            stats["seconds_after_heal"] = max(0.0, converged_at - after_heal)
    if not final_states:
        return Verdict("convergence", "unknown", "No live peers to compare.", {}, stats)
    differing = differences(final_states, fields)
    stats["files"] = len({name for files in final_states.values() for name in files})
    if not differing:
        return Verdict(
            "convergence",
            "valid",
            f"All {len(final_states)} live peers hold the same {stats['files']} files.",
            {},
            stats,
        )
    stats["differing_files"] = len(differing)
    return Verdict(
        "convergence",
        "invalid",
        f"{len(differing)} file(s) differ across {len(final_states)} live peers; "
        f"first: {_describe(differing[0])}.",
        {"differing_files": len(differing), "files": differing[:EVIDENCE_FILES]},
        stats,
    )


def converged_within(
    snapshots: Sequence[Snapshot],
    deadline: float,
    *,
    after_heal: float,
    fields: Sequence[str] = COMPARED,
) -> Verdict:
    """Check that the peers converged, for good, at most `deadline` seconds after the heal.

    Invalid evidence is the differences in the last snapshot at or before the deadline.
    "unknown" when the snapshots end before the deadline without having converged.
    """
    ordered = sorted(snapshots, key=lambda snapshot: snapshot[0])
    cutoff = after_heal + deadline
    converged_at = _converged_at(ordered, fields)
    stats: dict[str, Any] = {"snapshots": len(ordered), "converged_at": converged_at}
    if converged_at is not None:
        stats["seconds_after_heal"] = max(0.0, converged_at - after_heal)
        if converged_at <= cutoff:
            return Verdict(
                "convergence",
                "valid",
                f"Peers converged {stats['seconds_after_heal']:.3f} s after the heal, within "
                f"the {deadline} s deadline.",
                {},
                stats,
            )
    if not ordered or ordered[-1][0] < cutoff:
        return Verdict(
            "convergence",
            "unknown",
            f"The snapshots end before the deadline ({deadline} s after the heal) and the peers "
            "had not converged yet; take snapshots for longer.",
            {},
            stats,
        )
    # The evidence is the divergence closest to the deadline: the last one at or before it,
    # else the first one after it (the peers agreed at the deadline, then diverged again).
    before = [s for s in ordered if s[0] <= cutoff][::-1]
    after = [s for s in ordered if s[0] > cutoff]
    when, differing = next(
        (when, found) for when, states in before + after if (found := differences(states, fields))
    )
    return Verdict(
        "convergence",
        "invalid",
        f"Peers had not converged for good {deadline} s after the heal; at {when} "
        f"{len(differing)} file(s) differed, first: {_describe(differing[0])}.",
        {"time": when, "differing_files": len(differing), "files": differing[:EVIDENCE_FILES]},
        stats,
    )


def differences(states: PeerStates, fields: Sequence[str] = COMPARED) -> list[dict[str, Any]]:
    """Files the peers disagree on: for each, which peers hold which version (or lack it)."""
    names = sorted({name for files in states.values() for name in files})
    out = []
    for name in names:
        holders: dict[str, dict[str, Any]] = {}
        for node in sorted(states):
            held = states[node].get(name)
            version: dict[str, Any] = (
                {"missing": True} if held is None else {f: held[f] for f in fields if f in held}
            )
            group = holders.setdefault(
                json.dumps(version, sort_keys=True, default=str), {**version, "nodes": []}
            )
            group["nodes"].append(node)
        if len(holders) > 1:
            out.append({"name": name, "holders": list(holders.values())})
    return out


def _converged_at(snapshots: Sequence[Snapshot], fields: Sequence[str]) -> float | None:
    """The earliest time from which every snapshot shows all peers agreeing."""
    converged_at = None
    for when, states in sorted(snapshots, key=lambda snapshot: snapshot[0]):
        if differences(states, fields):
            converged_at = None
        elif converged_at is None:
            converged_at = when
    return converged_at


def _describe(file: dict[str, Any]) -> str:
    parts = []
    for holder in file["holders"]:
        nodes = ", ".join(holder["nodes"])
        if holder.get("missing"):
            parts.append(f"{nodes} lack it")
        else:
            shown = " ".join(f"{k}={str(v)[:12]}" for k, v in holder.items() if k != "nodes")
            parts.append(f"{nodes} hold {shown or 'it'}")
    return f"{file['name']!r}: " + "; ".join(parts)
