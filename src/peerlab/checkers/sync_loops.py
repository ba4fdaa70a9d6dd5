"""No sync loops: each change travels to each peer once, and never back to where it was.

A transfer is `{node, source, name, version or sha256, time}`: `node` fetched that
change of file `name` from `source`. The first source of a change is its origin, unless a
transfer names it (`origin`): peers' clocks may be skewed, so the times in their logs may
not order transfers across peers, while a system often knows where a change began (its
author). A peer
that receives a change it already held (it fetched it before, or it is the origin) shows
a loop — ping-pong (A→B→A), a triangle (A→B→C→A), an echo back to the origin — or a
duplicate fetch; the evidence traces the loop through who-got-it-from-whom. The number
of transfers of one change must also stay within a bound: by default the number of peers
that should receive it, the origin's connected component in the friend graph minus one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from peerlab.checkers.verdict import Verdict

EVIDENCE_CHANGES = 10
EVIDENCE_REPEATS = 5


def no_sync_loops(
    transfers: Iterable[Mapping[str, Any]],
    friend_graph: Mapping[str, Iterable[str]],
    *,
    bound: int | None = None,
) -> Verdict:
    """Check that no change is transferred in a loop or more often than `bound`.

    `friend_graph` maps each peer to its friends (links count both ways; networkx users
    can pass `nx.to_dict_of_lists(graph)`). `bound` overrides the per-change limit.
    """
    neighbours = _undirected(friend_graph)
    by_change: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for transfer in transfers:
        by_change.setdefault(_change(transfer), []).append(transfer)

    offending = []
    for (name, version), moves in by_change.items():
        moves = sorted(moves, key=lambda move: move["time"])
        origin = next((m["origin"] for m in moves if m.get("origin")), moves[0]["source"])
        limit = bound if bound is not None else len(_component(origin, neighbours)) - 1
        repeats = _repeats(origin, moves)
        if repeats or len(moves) > limit:
            offending.append(
                {
                    "name": name,
                    "version": version,
                    "origin": origin,
                    "transfers": len(moves),
                    "bound": limit,
                    "repeated": repeats[:EVIDENCE_REPEATS],
                }
            )
    stats = {"changes": len(by_change), "transfers": sum(map(len, by_change.values()))}
    if not offending:
        return Verdict(
            "no-sync-loops",
            "valid",
            f"All {stats['changes']} changes reached each peer at most once, within the bound.",
            [],
            stats,
        )
    stats["offending_changes"] = len(offending)
    return Verdict(
        "no-sync-loops",
        "invalid",
        f"{len(offending)} change(s) were transferred in a loop or too often; first: "
        f"{_describe(offending[0])}.",
        offending[:EVIDENCE_CHANGES],
        stats,
    )


def _change(transfer: Mapping[str, Any]) -> tuple[str, str]:
    version = transfer.get("version", transfer.get("sha256"))
    if version is None:
        raise ValueError(f"transfer {dict(transfer)!r} names no version or sha256")
    return str(transfer["name"]), str(version)


def _repeats(origin: str, moves: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Transfers to a peer that already held the change, each with the loop that led there."""
    got_from: dict[str, str | None] = {origin: None}
    first: dict[str, Mapping[str, Any]] = {}
    repeats = []
    for move in moves:
        node, source = move["node"], move["source"]
        if node not in got_from:
            got_from[node] = source
            first[node] = move
            continue
        earlier = first.get(node)
        repeats.append(
            {
                "node": node,
                "source": source,
                "time": move["time"],
                "already_held": "origin" if earlier is None else dict(earlier),
                "loop": _loop(node, source, got_from),
            }
        )
    return repeats


def _loop(node: str, source: str, got_from: Mapping[str, str | None]) -> list[str] | None:
    """The path the change took from `node` to `source` and back: [node, ..., source, node].

    None when `source` did not get the change through `node` (a duplicate fetch, no loop).
    """
    path = [source]
    current = got_from.get(source)
    while current is not None and current != node and current not in path:
        path.append(current)
        current = got_from.get(current)
    if current != node:
        return None
    return [node, *reversed(path), node]


def _undirected(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    neighbours: dict[str, set[str]] = {}
    for peer, friends in graph.items():
        neighbours.setdefault(peer, set())
        for friend in friends:
            neighbours[peer].add(friend)
            neighbours.setdefault(friend, set()).add(peer)
    return neighbours


def _component(start: str, neighbours: Mapping[str, set[str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for friend in neighbours.get(frontier.pop(), ()):
            if friend not in seen:
                seen.add(friend)
                frontier.append(friend)
    return seen


def _describe(change: dict[str, Any]) -> str:
    text = (
        f"{change['name']!r} version {change['version'][:12]}: {change['transfers']} transfers "
        f"for a bound of {change['bound']}"
    )
    if change["repeated"]:
        repeat = change["repeated"][0]
        if repeat["loop"]:
            text += f"; {repeat['node']} got it back through {' → '.join(repeat['loop'])}"
        else:
            text += f"; {repeat['node']} fetched it again from {repeat['source']}"
    return text
