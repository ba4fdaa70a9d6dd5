"""No lost writes: every acknowledged write is still there at the end, or was overwritten.

A write is an `ok` operation (f "write" or "publish") whose value names a key ("key" or
"name") and what was written ("sha256", else "value"). It is kept when some live peer's
final value for that key is what it wrote, or what another write wrote that may have
been applied after it (acknowledged or of unknown outcome, and not finished before it
began). A write that another acknowledged write began after is superseded: only that
later write has to survive, so only the newest writes are reported, which keeps the
evidence to the writes that matter. Failed writes did not happen and replace nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry, Operation, as_operations

WRITES = ("write", "publish")
EVIDENCE_WRITES = 20


def no_lost_writes(
    history: Iterable[Entry] | Iterable[Operation],
    final_states: Mapping[str, Mapping[Any, Any]],
    *,
    fs: Iterable[str] = WRITES,
) -> Verdict:
    """Check that no acknowledged write in `history` is missing from `final_states`.

    `final_states` maps each live peer to `{key: value}`, where a value is either the
    content itself or a mapping with "sha256" or "value" (a peer's file table works as is).
    """
    names = set(fs)
    writes_by_key: dict[Any, list[tuple[Operation, Any]]] = {}
    unkeyed = 0
    for op in as_operations(history):
        if op.f not in names or op.type == "fail":
            continue
        key, content = _written(op)
        if key is None:
            unkeyed += 1
            continue
        writes_by_key.setdefault(key, []).append((op, content))
    acknowledged = sum(op.type == "ok" for writes in writes_by_key.values() for op, _ in writes)
    stats: dict[str, Any] = {"acknowledged": acknowledged, "keys": len(writes_by_key)}
    if unkeyed:
        stats["writes_without_key"] = unkeyed
    if not final_states:
        return Verdict("no-lost-writes", "unknown", "No live peers to read from.", [], stats)

    lost = []
    for key, writes in writes_by_key.items():
        finals = {node: _content(files.get(key)) for node, files in final_states.items()}
        present = set(map(_hashable, finals.values()))
        writers: dict[Any, list[Operation]] = {}
        for op, content in writes:
            writers.setdefault(_hashable(content), []).append(op)
        newest_start = max((op.invoke_position for op, _ in writes if op.type == "ok"), default=-1)
        for op, content in writes:
            if op.type != "ok" or _hashable(content) in present:
                continue
            if op.complete_position is not None and op.complete_position < newest_start:
                continue  # superseded by an acknowledged write that began after it ended
            replaced = any(
                _may_follow(other, op) for held in present for other in writers.get(held, ())
            )
            if not replaced:
                lost.append({"key": key, "value": content, "write": op.to_json(), "final": finals})
    stats["lost"] = len(lost)
    if not lost:
        return Verdict(
            "no-lost-writes",
            "valid",
            f"All {acknowledged} acknowledged writes survive on {len(final_states)} live peers.",
            [],
            stats,
        )
    first = lost[0]
    return Verdict(
        "no-lost-writes",
        "invalid",
        f"{len(lost)} of {acknowledged} acknowledged writes are lost; first: {first['key']!r} = "
        f"{str(first['value'])[:16]} (index {first['write']['index']}), which no live peer holds "
        "and no later write replaced.",
        lost[:EVIDENCE_WRITES],
        stats,
    )


def _written(op: Operation) -> tuple[Any, Any]:
    value: Any = op.invoke.value
    reply = op.completion.value if op.completion is not None else None
    if isinstance(reply, Mapping):
        # The completion may add what the system reported (a sha256, a version).
        value = {**value, **reply} if isinstance(value, Mapping) else reply
    if not isinstance(value, Mapping):
        return None, value
    key = value.get("key", value.get("name"))
    return key, value.get("sha256", value.get("value"))


def _content(held: Any) -> Any:
    if isinstance(held, Mapping):
        return held.get("sha256", held.get("value"))
    return held


def _may_follow(other: Operation, write: Operation) -> bool:
    """Whether `other` could have taken effect after `write` (it did not end before it began)."""
    if other is write:
        return False
    ended = other.complete_position if other.type == "ok" else None
    return ended is None or ended > write.invoke_position


def _hashable(value: Any) -> Any:
    if isinstance(value, list | dict):
        return repr(value)
    return value
