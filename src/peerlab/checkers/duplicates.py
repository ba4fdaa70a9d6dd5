"""Exactly once: no task, claim or message takes effect twice, and none is left behind.

The operations checked are `ok` ones whose f is "claim", "apply" or "deliver" (by
default) and whose value carries an id (a mapping with "id", or the id itself; the
completion's value wins, since a claim learns its task from the reply). Two ok
operations of the same f on the same id are a duplicate. Given the expected ids, one
that no ok operation covered is missing; one covered only by operations of unknown
outcome (info) may or may not have happened, which makes the verdict "unknown".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry, Operation, as_operations

APPLIES = ("claim", "apply", "deliver")
EVIDENCE_IDS = 20


def exactly_once(
    history: Iterable[Entry] | Iterable[Operation],
    *,
    expected: Iterable[Hashable] | None = None,
    fs: Iterable[str] = APPLIES,
    id_field: str = "id",
) -> Verdict:
    """Check that each id was applied at most once (and, given `expected`, at least once)."""
    names = set(fs)
    done: dict[tuple[str, Hashable], list[Operation]] = {}
    maybe: set[Hashable] = set()
    for op in as_operations(history):
        if op.f not in names or op.type == "fail":
            continue
        identity = _id(op.value, id_field)
        if op.type == "ok":
            done.setdefault((op.f, identity), []).append(op)
        else:
            maybe.add(identity)
    duplicates = [
        {"id": identity, "f": f, "count": len(ops), "ops": [op.to_json() for op in ops[:2]]}
        for (f, identity), ops in done.items()
        if len(ops) > 1
    ]
    applied = {identity for _, identity in done}
    stats: dict[str, Any] = {"applied_ids": len(applied), "duplicated_ids": len(duplicates)}
    evidence: dict[str, Any] = {}
    if duplicates:
        evidence["duplicates"] = duplicates[:EVIDENCE_IDS]
    uncertain: list[Hashable] = []
    if expected is not None:
        wanted = set(expected)
        missing = sorted(wanted - applied - maybe, key=repr)
        uncertain = sorted((wanted - applied) & maybe, key=repr)
        stats.update(expected=len(wanted), missing=len(missing), uncertain=len(uncertain))
        stats["unexpected"] = len(applied - wanted)
        if missing:
            evidence["missing"] = missing[:EVIDENCE_IDS]
    if evidence:
        parts = []
        if duplicates:
            first = duplicates[0]
            parts.append(
                f"{len(duplicates)} id(s) applied more than once (first: {first['f']} of "
                f"{first['id']!r}, {first['count']} times)"
            )
        if "missing" in evidence:
            parts.append(f"{stats['missing']} expected id(s) never applied")
        return Verdict("exactly-once", "invalid", "; ".join(parts) + ".", evidence, stats)
    if uncertain:
        return Verdict(
            "exactly-once",
            "unknown",
            f"No duplicates, but {len(uncertain)} expected id(s) were attempted with unknown "
            "outcome and never acknowledged.",
            {"uncertain": uncertain[:EVIDENCE_IDS]},
            stats,
        )
    return Verdict(
        "exactly-once",
        "valid",
        f"Each of the {len(applied)} applied ids was applied exactly once.",
        {},
        stats,
    )


def _id(value: Any, id_field: str) -> Hashable:
    if isinstance(value, Mapping):
        if id_field not in value:
            raise ValueError(f"operation value {dict(value)!r} has no {id_field!r}; pass id_field=")
        value = value[id_field]
    if isinstance(value, list):
        return tuple(value)
    return value
