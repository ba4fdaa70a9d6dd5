"""The search agrees with brute force on thousands of small random histories.

The reference enumerates every subset of unknown-outcome operations and every order that
respects real time, and runs its own tiny interpreter of each model, so it shares no code
with the checker's search, reductions or models.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from peerlab.checkers import linearizable
from peerlab.history import Entry, History, Operation, operations


def apply(model: str, state: Any, op: Operation) -> tuple[bool, Any]:
    known = op.type == "ok"
    result = op.completion.value if op.completion is not None else None
    if op.f == "read":
        if not known:
            return True, state
        expected = frozenset(result or ()) if model == "set" else result
        return state == expected, state
    if op.f == "write":
        return True, op.invoke.value
    if op.f == "add":
        return True, state | {op.invoke.value}
    expected, new = op.invoke.value
    if state == expected:
        return True, new
    # A cas with unknown outcome that did not match changed nothing.
    return not known, state


def brute_force(model: str, entries: list[Entry]) -> bool:
    ops = [op for op in operations(entries) if op.type != "fail"]
    unknown = [op for op in ops if op.type == "info"]
    known = [op for op in ops if op.type == "ok"]

    def precedes(a: Operation, b: Operation) -> bool:
        return a.type == "ok" and a.complete_position < b.invoke_position  # type: ignore[operator]

    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            for order in itertools.permutations(known + list(chosen)):
                if any(
                    precedes(later, earlier)
                    for i, earlier in enumerate(order)
                    for later in order[i + 1 :]
                ):
                    continue
                state: Any = frozenset() if model == "set" else None
                for op in order:
                    accepted, state = apply(model, state, op)
                    if not accepted:
                        break
                else:
                    return True
    return False


def random_history(model: str, rng: random.Random, ops: int) -> list[Entry]:
    history = History()
    open_ops: dict[int, Entry] = {}
    started = 0
    while started < ops or open_ops:
        idle = [p for p in range(3) if p not in open_ops]
        if started < ops and idle and (not open_ops or rng.random() < 0.5):
            process = rng.choice(idle)
            f = rng.choice(
                {
                    "register": ["read", "write"],
                    "cas-register": ["read", "write", "cas"],
                    "set": ["read", "add"],
                }[model]
            )
            value: Any = None
            if f in ("write", "add"):
                value = rng.randrange(3)
            elif f == "cas":
                value = [rng.randrange(3), rng.randrange(3)]
            open_ops[process] = history.invoke(f, value, process=process)
            started += 1
            continue
        process = rng.choice(sorted(open_ops))
        invocation = open_ops.pop(process)
        outcome = rng.choices(["ok", "info", "fail"], [8, 1, 1])[0]
        result = invocation.value
        if invocation.f == "read":
            result = (
                sorted(rng.sample(range(3), rng.randrange(4)))
                if model == "set"
                else rng.choice([None, 0, 1, 2])
            )
        history.complete(invocation, outcome, result)  # type: ignore[arg-type]
    return history.entries()


@pytest.mark.parametrize("model", ["register", "cas-register", "set"])
def test_search_matches_brute_force(model: str) -> None:
    rng = random.Random(f"bruteforce-{model}")
    outcomes = {True: 0, False: 0}
    for _ in range(700):
        entries = random_history(model, rng, rng.randrange(1, 7))
        expected = brute_force(model, entries)
        verdict = linearizable(entries, model)
        assert verdict.valid == ("valid" if expected else "invalid"), [e.to_json() for e in entries]
        outcomes[expected] += 1
    # Both answers must be well represented, or the comparison proves little.
    assert min(outcomes.values()) > 100, outcomes
