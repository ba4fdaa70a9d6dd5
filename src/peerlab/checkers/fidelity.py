"""Fault fidelity: every link the partition cut carried nothing while it was cut, and no
connection to a node was refused because its source could not be told.

The fabric records a `link_bytes` event each time the faults change: the node pairs the
partition declares cut from then on, and the bytes forwarded so far on every link cut
before or after the change (per protocol, each way). Between two such samples a cut pair
(A cannot reach B) must see no byte move:

- TCP: nothing on the connections A opened to B, either way (they are reset and refused);
- UDP: no datagram from A to B (A's datagrams to B, and B's proxy relaying to A's ephemeral
  socket is data B -> A, which is checked when B -> A is cut).

An `unattributed` event is a connection or flow the fabric refused because it could not
tell its source: fail-closed kept the partition, but the run did not test what it said.
One exception: an orphaned socket (no process holds it any more) refused within
`EXIT_WINDOW` of a node's exit is the dying node's last dial; refusing it changes nothing
a live process sees, so it is counted (`unattributed_at_exit`), not held against the run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry

EVIDENCE_LEAKS = 20
EXIT_WINDOW = 2.0  # seconds around a node's exit within which orphaned sockets are its own
EXITS = ("node_killed", "node_stopped", "node_exited", "node_restarted")
Counters = dict[tuple[str | None, str | None, str], tuple[int, int]]


def needs_fidelity(history: Iterable[Entry]) -> bool:
    """Whether the run applied a partition or a fault aimed at a node (a directed fault)."""
    for entry in history:
        if entry.type != "fault" or entry.f != "apply" or not isinstance(entry.value, dict):
            continue
        fault = entry.value
        if fault.get("kind") in ("partition", "rolling"):
            return True
        if fault.get("src") is not None or fault.get("dst") is not None:
            return True
    return False


def _counters(entry: Entry) -> Counters:
    return {
        (link.get("src"), link.get("dst"), str(link.get("protocol"))): (
            int(link.get("up", 0)),
            int(link.get("down", 0)),
        )
        for link in entry.data.get("links", [])
    }


def _moved(before: Counters, after: Counters, key: tuple[str, str, str], side: int) -> int:
    return after.get(key, (0, 0))[side] - before.get(key, (0, 0))[side]


def fault_fidelity(history: Iterable[Entry]) -> Verdict:
    """Check that no byte crossed a cut link while it was cut, and nothing was unattributed."""
    entries = list(history)
    samples: list[tuple[Entry, dict[str, Any] | None]] = []
    partition: dict[str, Any] | None = None
    unattributed: list[dict[str, Any]] = []
    exits = [e.wall for e in entries if e.type == "event" and e.f in EXITS]
    at_exit = 0
    for entry in entries:
        if entry.type == "fault" and isinstance(entry.value, dict):
            if entry.value.get("kind") in ("partition", "rolling"):
                partition = entry.value if entry.f == "apply" else None
        elif entry.type == "event" and entry.f == "link_bytes":
            samples.append((entry, partition))
        elif entry.type == "event" and entry.f == "unattributed":
            if entry.data.get("orphaned") and any(
                abs(entry.wall - wall) <= EXIT_WINDOW for wall in exits
            ):
                at_exit += 1
            else:
                unattributed.append({"node": entry.node, **entry.data})
    start = entries[0].wall if entries else 0.0
    leaks: list[dict[str, Any]] = []
    pairs: set[tuple[str, str]] = set()
    intervals = pair_intervals = 0
    for (before, fault), (after, _) in itertools.pairwise(samples):
        cut = [(str(a), str(b)) for a, b in before.data.get("cut", [])]
        if not cut:
            continue
        intervals += 1
        pair_intervals += len(cut)
        old, new = _counters(before), _counters(after)
        for a, b in cut:
            pairs.add((a, b))
            moved = {
                "tcp": _moved(old, new, (a, b, "tcp"), 0) + _moved(old, new, (a, b, "tcp"), 1),
                "udp": _moved(old, new, (a, b, "udp"), 0) + _moved(old, new, (b, a, "udp"), 1),
            }
            if any(moved.values()):
                leaks.append(
                    {
                        "link": f"{a}->{b}",
                        "src": a,
                        "dst": b,
                        "bytes": sum(moved.values()),
                        "by_protocol": {p: n for p, n in moved.items() if n},
                        "from_s": round(before.wall - start, 3),
                        "to_s": round(after.wall - start, 3),
                        "partition": fault,
                    }
                )
    stats = {
        "samples": len(samples),
        "cut_intervals": intervals,
        "links_cut": len(pairs),
        "cut_link_intervals": pair_intervals,
        "leaked_bytes": sum(leak["bytes"] for leak in leaks),
        "unattributed": len(unattributed),
        "unattributed_at_exit": at_exit,
    }
    if leaks or unattributed:
        parts = []
        if leaks:
            first = leaks[0]
            parts.append(
                f"{len(leaks)} cut link interval(s) carried bytes; first: {first['link']} "
                f"forwarded {first['bytes']} bytes while cut, from +{first['from_s']:.2f}s to "
                f"+{first['to_s']:.2f}s of the run"
            )
        if unattributed:
            first_refusal = unattributed[0]
            parts.append(
                f"{len(unattributed)} connection(s) refused as unattributed; first: "
                f"{first_refusal.get('protocol')} {first_refusal.get('src')} -> "
                f"{first_refusal.get('dst')} ({first_refusal.get('node')}): "
                f"{first_refusal.get('reason')}"
            )
        return Verdict(
            "fault-fidelity",
            "invalid",
            "; ".join(parts) + ".",
            {"leaks": leaks[:EVIDENCE_LEAKS], "unattributed": unattributed[:EVIDENCE_LEAKS]},
            stats,
        )
    if not intervals:
        summary = "No link was cut; every connection's source was told."
    else:
        summary = (
            f"{len(pairs)} cut links carried no byte over {intervals} cut intervals; every "
            "connection's source was told."
        )
    return Verdict("fault-fidelity", "valid", summary, {}, stats)
