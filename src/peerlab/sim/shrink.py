"""Shrinking a failing simulated run: the smallest plan that still fails the same way.

A plan fails "the same way" when the same checkers find a violation (`Outcome.failed`). The
plan shrinks in three passes, each a run of the simulation per try, the seed unchanged (so
node keys, random draws and the rest of the world stay as they were):

1. drop faults: delta debugging (ddmin) over the nemesis schedule's steps;
2. shorten intervals: each remaining fault's duration halved while it still fails;
3. drop workload operations: ddmin over the writes.

The passes repeat until none changes the plan (fewer writes may leave a fault unneeded),
so the result is 1-minimal in the steps and operations kept (removing any one of them
makes the run pass or fail otherwise), as far as the budget of tries allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from peerlab.errors import UsageError
from peerlab.nemesis.schedule import Step
from peerlab.plan import Plan
from peerlab.sim.runs import Outcome, run

T = TypeVar("T")
SHORTEST = 0.1  # seconds: a fault is not shortened below this
DEFAULT_TRIES = 200


class OutOfTries(Exception):
    """The budget of runs is spent: the plan is as small as it got."""


@dataclass
class Shrunk:
    """The smallest failing plan found, how it fails, and what it took."""

    original: Plan
    plan: Plan
    failed: tuple[str, ...]
    tries: int
    complete: bool  # False: the budget ran out before the passes ended

    def summary(self) -> dict[str, object]:
        original, plan = self.original, self.plan
        return {
            "failed": list(self.failed),
            "steps": f"{len(original.steps or ())} -> {len(plan.steps or ())}",
            "ops": f"{len(original.ops or ())} -> {len(plan.ops or ())}",
            "tries": self.tries,
            "complete": self.complete,
        }


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool]) -> list[T]:
    """Zeller's delta debugging: a subsequence of `items` on which `fails` still holds and
    from which no single element can be removed (within the tries `fails` allows)."""
    items = list(items)
    if fails([]):
        return []
    parts = 2
    while len(items) >= 2:
        size = math.ceil(len(items) / parts)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for index in range(len(chunks)):
            complement = [x for i, chunk in enumerate(chunks) if i != index for x in chunk]
            if fails(chunks[index]):
                items, parts = chunks[index], 2
                break
            if fails(complement):
                items, parts = complement, max(parts - 1, 2)
                break
        else:
            if parts >= len(items):
                break
            parts = min(len(items), parts * 2)
    return items


def shrink(
    plan: Plan,
    failed: tuple[str, ...],
    *,
    tries: int = DEFAULT_TRIES,
    on_try: Callable[[Plan, Outcome, bool], None] | None = None,
) -> Shrunk:
    """The smallest plan that fails like `failed`, found in at most `tries` runs."""
    if not failed:
        raise UsageError("the run passed: there is nothing to shrink", field="RUN")
    if plan.steps is None or plan.ops is None:
        raise UsageError(
            "the plan does not say which faults and writes it ran",
            field="RUN",
            hint="shrink the plan.json a run wrote (it has its steps and ops)",
        )
    spent = 0

    def still_fails(candidate: Plan) -> bool:
        nonlocal spent
        if spent >= tries:
            raise OutOfTries
        spent += 1
        outcome = run(candidate)
        same = outcome.failed == failed
        if on_try is not None:
            on_try(candidate, outcome, same)
        return same

    best = plan
    complete = True
    try:
        while (smaller := _pass(best, still_fails)) != best:
            best = smaller
    except OutOfTries:
        complete = False
    return Shrunk(plan, best, failed, spent, complete)


def _pass(plan: Plan, still_fails: Callable[[Plan], bool]) -> Plan:
    """One round of the three passes: fewer faults, shorter faults, fewer writes."""
    kept = ddmin(plan.steps or (), lambda s: still_fails(replace(plan, steps=tuple(s))))
    plan = _shorten(replace(plan, steps=tuple(kept)), still_fails)
    ops = ddmin(plan.ops or (), lambda o: still_fails(replace(plan, ops=tuple(o))))
    return replace(plan, ops=tuple(ops))


def _shorten(plan: Plan, still_fails: Callable[[Plan], bool]) -> Plan:
    """Halve each fault's duration while the plan still fails."""
    steps = list(plan.steps or ())
    for index, step in enumerate(steps):
        while step.duration is not None and step.duration / 2 >= SHORTEST:
            shorter = Step(step.at, round(step.duration / 2, 3), step.fault)
            candidate = replace(plan, steps=(*steps[:index], shorter, *steps[index + 1 :]))
            if not still_fails(candidate):
                break
            steps[index], step, plan = shorter, shorter, candidate
    return plan
