"""Linearizability: one order of all operations, consistent with real time, that a model explains.

The search is Wing & Gong's, with Lowe's cache of explored configurations and Horn &
Kroening's partitioning by key (the algorithm Porcupine implements). Calls and returns
form one doubly linked list in real-time order. The search walks it from the front: a
call may be linearized next if the model accepts it, which unlinks the call and its
return ("lift"); reaching a return means that operation had to be linearized already,
so the search undoes its last choice ("unlift") and tries the next call. A configuration
is the set of linearized operations (a bitset in a Python int) plus the model state;
reaching one twice cannot lead anywhere new, so the search prunes it.

Semantics follow Knossos: `fail` operations did not happen and are dropped; `info`
operations (and invocations the history never completed) may or may not have happened,
so they return at +infinity and may be linearized anywhere after their call, or not at
all: where the model rejects one, it is linearized as a no-op. An unknown operation whose
effect no other operation ever observed is dropped: it can always go last, so it cannot
matter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from peerlab.checkers.models import REJECT, Model, Step, model_named
from peerlab.checkers.verdict import Verdict
from peerlab.history import Entry, Operation, as_operations

# How many operations before the dead end the evidence shows: enough context to read it.
EVIDENCE_TAIL = 5
# The search looks at the clock every this many iterations, so a time limit costs nothing.
CLOCK_EVERY = 4096
# The passes over the candidates, in the order the search tries them.
_READS, _KNOWN, _UNKNOWN = 0, 1, 2


def linearizable(
    history: Iterable[Entry] | Iterable[Operation],
    model: str | Model = "register",
    *,
    time_limit: float | None = None,
) -> Verdict:
    """Check that `history` is linearizable with respect to `model`.

    `model` is a name ("register", "cas-register", "set") or a `Model` (which carries the
    initial value). Operations whose value is a mapping with a "key" are checked per key,
    with the "value" item as the operation's argument or result. After `time_limit`
    seconds the verdict is "unknown" instead of waiting for an answer.
    """
    started = time.monotonic()
    spec = model_named(model) if isinstance(model, str) else model
    partitions, dropped = _partitions(as_operations(history), spec)
    deadline = None if time_limit is None else started + time_limit
    searches = [_search(partition, spec, deadline) for partition in partitions]
    stats = {
        "model": spec.name,
        "operations": sum(len(partition.ops) for partition in partitions),
        "dropped": dropped,
        "keys": len(partitions),
        "configurations": sum(search.configurations for search in searches),
        "backtracks": sum(search.backtracks for search in searches),
        "seconds": round(time.monotonic() - started, 6),
    }
    failed = [search for search in searches if search.linearizable is False]
    if failed:
        return _invalid(failed, spec, stats)
    if any(search.linearizable is None for search in searches):
        unfinished = sum(search.linearizable is None for search in searches)
        return Verdict(
            "linearizable",
            "unknown",
            f"Gave up after the {time_limit} s time limit with {unfinished} of "
            f"{len(searches)} keys still undecided; raise the limit or shorten the history.",
            {"undecided_keys": [s.partition.key for s in searches if s.linearizable is None]},
            stats,
        )
    return Verdict(
        "linearizable",
        "valid",
        f"All {stats['operations']} operations on {len(partitions)} key(s) have a "
        f"linearization under the {spec.name} model.",
        {},
        stats,
    )


@dataclass
class _Partition:
    """The operations on one key, ordered by invocation; op ids are their places here."""

    key: Hashable
    ops: list[Operation] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


@dataclass
class _DeadEnd:
    """The deepest place the search got stuck: what was linearized, and what could not be."""

    depth: int
    tail: list[int]
    state: Any
    blocked: int
    candidates: list[int]


@dataclass
class _Search:
    partition: _Partition
    linearizable: bool | None
    configurations: int
    backtracks: int
    dead_end: _DeadEnd | None


def _partitions(ops: list[Operation], model: Model) -> tuple[list[_Partition], int]:
    by_key: dict[Hashable, _Partition] = {}
    dropped = 0
    for op in ops:
        if op.type == "fail":
            dropped += 1
            continue
        key, argument, result = _split(op)
        step = model.compile(op.f, argument, result, op.type == "ok")
        if step is None:
            dropped += 1
            continue
        partition = by_key.setdefault(key, _Partition(key))
        partition.ops.append(op)
        partition.steps.append(step)
    for partition in by_key.values():
        dropped += _reduce(partition, model)
    return list(by_key.values()), dropped


def _split(op: Operation) -> tuple[Hashable, Any, Any]:
    """(key, argument, result) of an operation; the key is None for a single object."""
    argument = op.invoke.value
    result = op.completion.value if op.completion is not None and op.type == "ok" else None
    key: Hashable = None
    if isinstance(argument, Mapping) and "key" in argument:
        key = argument["key"]
        argument = argument.get("value")
        if isinstance(result, Mapping) and "key" in result:
            result = result.get("value")
    if argument is None:
        # Knossos allows the invocation to omit what the completion reports.
        argument = result
    return key, argument, result


def _reduce(partition: _Partition, model: Model) -> int:
    """Shrink the search without changing its answer; returns how many ops were dropped.

    An unknown operation whose effect nobody observed can always go last, so it is
    dropped. Values nobody observed are merged into one (`Model.forget`).
    """
    observed: set[Hashable] = set()
    for step in partition.steps:
        observed.update(model.observations(step))
    kept = [
        (op, model.forget(step, observed))
        for op, step in zip(partition.ops, partition.steps, strict=True)
        if op.type == "ok" or any(value in observed for value in model.effects(step))
    ]
    dropped = len(partition.ops) - len(kept)
    partition.ops = [op for op, _ in kept]
    partition.steps = [step for _, step in kept]
    return dropped


def _search(partition: _Partition, model: Model, deadline: float | None) -> _Search:
    """Wing & Gong's search over one partition, with the configuration cache.

    Candidates (calls before the first remaining return) are tried in three passes. First
    reads the state satisfies: a pure read placed now is never worse than placed later, so
    the search commits to it and never tries the alternatives. Then operations with known
    outcome. Last, unknown ones, which may as well wait since they can take effect anytime.
    """
    ops, steps = partition.ops, partition.steps
    count = len(ops)
    passes = [
        _READS if model.observes_only(step) else _KNOWN if op.type == "ok" else _UNKNOWN
        for op, step in zip(ops, steps, strict=True)
    ]
    # Nodes 0..count-1 are calls, count..2*count-1 the matching returns, then head and tail.
    head, tail = 2 * count, 2 * count + 1
    nxt = [0] * (2 * count + 2)
    prv = [0] * (2 * count + 2)
    previous = head
    for node in _real_time_order(ops):
        nxt[previous], prv[node] = node, previous
        previous = node
    nxt[previous], prv[tail] = tail, previous

    step = model.step
    state = model.initial
    # The linearized set is kept relative to the lowest op not yet linearized, which is
    # always the first node of the list: every op below it is linearized, so the bits from
    # it up (`window`, a small int) identify the set, and keep the cache small.
    window = 0
    stack: list[tuple[int, Any, int, int]] = []
    cache: set[tuple[int, int, Any]] = set()
    dead_end: _DeadEnd | None = None
    backtracks = 0
    iterations = 0
    current_pass = _READS
    node = nxt[head]
    while nxt[head] != tail:
        iterations += 1
        if deadline is not None and iterations % CLOCK_EVERY == 0 and time.monotonic() > deadline:
            return _Search(partition, None, len(cache), backtracks, dead_end)
        if node < count:
            if passes[node] != current_pass:
                node = nxt[node]
                continue
            new_state = step(state, steps[node])
            if new_state is REJECT:
                if current_pass != _UNKNOWN:
                    node = nxt[node]
                    continue
                # An unknown operation the state rules out here simply did not happen.
                new_state = state
            base = nxt[head]
            new_window = window | (1 << (node - base))
            new_base = base
            if node == base:
                returned = node + count
                new_base = nxt[node] if nxt[node] != returned else nxt[returned]
                new_window >>= new_base - base
            configuration = (new_base, new_window, new_state)
            if configuration not in cache:
                cache.add(configuration)
                stack.append((node, state, current_pass, window))
                state, window = new_state, new_window
                # Lift: unlink the call and its return (dancing links; see the unlift below).
                before, after = prv[node], nxt[node]
                nxt[before], prv[after] = after, before
                returned = node + count
                before, after = prv[returned], nxt[returned]
                nxt[before], prv[after] = after, before
                current_pass = _READS
                node = nxt[head]
                continue
            if current_pass != _READS:
                node = nxt[node]
                continue
            # A committed read leads only to explored ground: this whole configuration fails.
        elif current_pass != _UNKNOWN:
            current_pass += 1
            node = nxt[head]
            continue
        elif dead_end is None or len(stack) > dead_end.depth:
            dead_end = _dead_end(stack, state, node - count, nxt[head], count, nxt)
        while True:
            if not stack:
                return _Search(partition, False, len(cache), backtracks, dead_end)
            backtracks += 1
            node, state, current_pass, window = stack.pop()
            # Unlift in the reverse order of the lift: the unlinked nodes still point at
            # their old neighbours, so relinking them restores the list exactly.
            returned = node + count
            nxt[prv[returned]] = prv[nxt[returned]] = returned
            nxt[prv[node]] = prv[nxt[node]] = node
            if current_pass != _READS:
                break
        node = nxt[node]
    return _Search(partition, True, len(cache), backtracks, None)


def _real_time_order(ops: list[Operation]) -> list[int]:
    """Call and return nodes sorted by where they happened; unknown returns come last."""
    events: list[tuple[float, int]] = []
    for op_id, op in enumerate(ops):
        events.append((op.invoke_position, op_id))
        returned = op.complete_position if op.type == "ok" else None
        events.append((math.inf if returned is None else returned, len(ops) + op_id))
    # Ties only happen among the infinite returns; the node id keeps them in call order.
    return [node for _, node in sorted(events)]


def _dead_end(
    stack: list[tuple[int, Any, int, int]],
    state: Any,
    blocked: int,
    first: int,
    count: int,
    nxt: list[int],
) -> _DeadEnd:
    candidates = []
    node = first
    while node < count:
        candidates.append(node)
        node = nxt[node]
    tail = [entry[0] for entry in stack[-EVIDENCE_TAIL:]]
    return _DeadEnd(len(stack), tail, state, blocked, candidates)


def _invalid(failed: list[_Search], model: Model, stats: dict[str, Any]) -> Verdict:
    search = failed[0]
    dead_end = search.dead_end
    assert dead_end is not None, "a failed search always records where it got stuck"
    ops, steps = search.partition.ops, search.partition.steps
    blocked = ops[dead_end.blocked]
    stuck = []
    for op_id in dead_end.candidates:
        rejected = model.step(dead_end.state, steps[op_id]) is REJECT
        stuck.append({**ops[op_id].to_json(), "rejected_by_model": rejected})
    evidence: dict[str, Any] = {
        "key": search.partition.key,
        "model": model.name,
        "linearized": dead_end.depth,
        "operations": len(ops),
        "prefix_tail": [ops[op_id].to_json() for op_id in dead_end.tail],
        "state": model.describe(dead_end.state),
        "blocked": blocked.to_json(),
        "could_not_linearize": stuck,
    }
    if len(failed) > 1:
        evidence["other_invalid_keys"] = [other.partition.key for other in failed[1:]]
    where = "" if search.partition.key is None else f" on key {search.partition.key!r}"
    summary = (
        f"Not linearizable{where}: no order explains {_describe(blocked)}; the longest valid "
        f"order found covers {dead_end.depth} of {len(ops)} operations and leaves the state at "
        f"{model.describe(dead_end.state)!r}."
    )
    return Verdict("linearizable", "invalid", summary, evidence, stats)


def _describe(op: Operation) -> str:
    result = op.completion.value if op.completion is not None and op.type == "ok" else None
    shown = f"{op.f} {op.invoke.value!r}" if op.invoke.value is not None else op.f
    if op.f == "read" and result is not None:
        shown = f"read → {result!r}"
    return f"{shown} (process {op.process!r}, index {op.invoke.index})"
