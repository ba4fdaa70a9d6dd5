"""Reruns that tell a flaky test from a real failure.

A test that fails is run again, first with the seed it failed with, then with new seeds:

  flaky           it passed on the same-seed rerun: something outside the seed decides
                  (timing, the machine, another test); reported as passed, marked flaky
  seed-dependent  it failed again with its seed and passed with another: a real failure
                  that this seed brings out; replay it with that seed
  deterministic   it failed with its seed and with every new seed tried (or there was none
                  to try): a real failure whatever the seed

Each attempt of a test that uses `peerlab_env` writes its own results folder beside the
first one (`<test>~rerun2`, ...), and the first holds `reruns.json` with every attempt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from peerlab.seed import new_seed

FLAKY = "flaky"
SEED_DEPENDENT = "seed-dependent"
DETERMINISTIC = "deterministic"

FORCED_SEED = pytest.StashKey[int]()  # the seed an attempt must use
USED_SEED = pytest.StashKey[int]()  # the seed the peerlab_seed fixture gave
ATTEMPT = pytest.StashKey[int]()  # 1 for the first run, 2 for the first rerun, ...
RESULTS = pytest.StashKey[str]()  # the results folder the attempt wrote
RERUNS_FILE = "reruns.json"


@dataclass(frozen=True)
class Attempt:
    number: int
    seed: int | None
    passed: bool
    results: str | None  # its results folder, when the test wrote one


def classify(attempts: list[Attempt]) -> str:
    """What the attempts of a test whose first attempt failed say about it."""
    if len(attempts) > 1 and attempts[1].passed:
        return FLAKY
    if any(attempt.passed for attempt in attempts[2:]):
        return SEED_DEPENDENT
    return DETERMINISTIC


def next_seed(attempts: list[Attempt], reruns: int) -> int | bool | None:
    """The seed of the next attempt (None: the test has no seed), or False when the
    attempts so far settle the question or the reruns are spent."""
    first = attempts[0]
    done = len(attempts) - 1
    if done >= reruns or (done >= 1 and attempts[-1].passed):
        return False
    if done == 0:
        return first.seed  # the same seed first, None included
    if first.seed is None:
        return False  # nothing else to vary
    tried = {attempt.seed for attempt in attempts}
    seed = new_seed()
    while seed in tried:
        seed = new_seed()
    return seed


def results_dir(item: pytest.Item, base: Path, name: str) -> Path:
    """Where an attempt of `item` writes its results: `name`, then `name~rerunN`."""
    attempt = item.stash.get(ATTEMPT, 1)
    path = base / (name if attempt == 1 else f"{name}~rerun{attempt}")
    item.stash[RESULTS] = str(path)
    return path


def seed_for(item: pytest.Item, chosen: int) -> int:
    """The seed of this attempt: the one a rerun forces, else `chosen`; remembered."""
    seed = item.stash.get(FORCED_SEED, chosen)
    item.stash[USED_SEED] = seed
    return seed


def summary(classification: str, attempts: list[Attempt]) -> str:
    """What the terminal and the report say about a rerun test."""
    first = attempts[0]
    seed = f" with seed {first.seed}" if first.seed is not None else ""
    lines = [f"peerlab reruns: {classification}: failed{seed}, then"]
    for attempt in attempts[1:]:
        verdict = "passed" if attempt.passed else "failed"
        lines.append(f"  rerun {attempt.number - 1}: {verdict} with seed {attempt.seed}")
    if classification == FLAKY:
        lines.append("  the same seed passed: nondeterminism outside the seed")
    elif classification == SEED_DEPENDENT:
        lines.append(f"  fails with seed {first.seed}, passes with others: replay that seed")
    else:
        lines.append("  fails whatever the seed: a real failure")
    folders = [a.results for a in attempts if a.results]
    if folders:
        lines.append("  artifacts: " + ", ".join(folders))
    return "\n".join(lines)


def write_record(classification: str, attempts: list[Attempt]) -> None:
    """reruns.json in the first attempt's results folder, when it has one."""
    first = attempts[0].results
    if first is None or not Path(first).is_dir():
        return
    record: dict[str, Any] = {
        "classification": classification,
        "attempts": [asdict(attempt) for attempt in attempts],
    }
    (Path(first) / RERUNS_FILE).write_text(json.dumps(record, indent=2))
