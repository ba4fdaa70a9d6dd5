"""A failing chaos scenario prints the line that replays it, and the replay fails the same
way under the same fault schedule (TC-761)."""

from __future__ import annotations

import re
import shlex

import pytest

from peerlab.nemesis.schedule import Schedule

pytestmark = pytest.mark.chaos

KINDS = ["latency", "loss", "slicer", "bandwidth"]

# A scenario with a deliberate bug on every peer (deletes never leave the node that made
# them), a seeded schedule of faults meanwhile, and the checkers at the end.
BROKEN_SCENARIO = f"""
from peerlab.nemesis.runner import NemesisRunner
from peerlab.nemesis.schedule import Schedule
from peerlab.systems.syncpeer_checks import check_sync, explain
from peerlab.wait import wait_until


def test_deletes_reach_everyone(peerlab_env):
    env = peerlab_env
    names = ["A", "B", "C"]
    for name in names:
        env.node_env[name] = {{"SYNCPEER_MUTANTS": "forget-tombstone"}}
    env.start("syncpeer", names)
    env.adapter("syncpeer").befriend_graph([("A", "B"), ("B", "C"), ("A", "C")])
    schedule = Schedule.generate(env.seed, names, 3.0, {KINDS!r}, mean_gap=0.5,
                                 fault_seconds=(0.3, 1.5))
    print("NEMESIS", schedule.fingerprint())
    with NemesisRunner(env, schedule):
        env.client("A").publish("doomed.txt", b"soon deleted")
        wait_until(lambda: all(env.client(n).file("doomed.txt") for n in "BC"), 20,
                   what="B and C to get doomed.txt")
        env.client("A").delete("doomed.txt")
    verdicts = check_sync(env, timeout=2)
    assert all(v.ok for v in verdicts), explain(verdicts)
"""

REPLAY = re.compile(r"replay: (pytest '[^']+' --peerlab-seed (\d+))")
NEMESIS = re.compile(r"NEMESIS ([0-9a-f]{16})")
FAILURE = re.compile(r"^E\s+AssertionError: (.*)$", re.MULTILINE)


def failure_of(text: str) -> str:
    """The first assertion line, with hashes (which differ run to run) blanked out."""
    found = FAILURE.search(text)
    assert found, text[-3000:]
    return re.sub(r"[0-9a-f]{12,}", "<hash>", found.group(1))


def test_failing_scenario_replays(pytester: pytest.Pytester) -> None:
    """TC-761: run a deliberately broken scenario with a fresh seed; it fails and prints
    `replay: pytest '<nodeid>' --peerlab-seed N`. Running that line applies the same fault
    schedule (same fingerprint) and fails with the same verdict."""
    pytester.makepyfile(test_broken=BROKEN_SCENARIO)
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    text = first.stdout.str()
    assert first.ret == 1, text[-3000:]
    replay = REPLAY.search(text)
    assert replay, f"no replay line in the failure report:\n{text[-3000:]}"
    command, seed = replay.group(1), int(replay.group(2))
    fingerprint = NEMESIS.search(text)
    assert fingerprint, text[-3000:]
    assert "convergence: invalid" in failure_of(text), failure_of(text)

    again = pytester.runpytest_subprocess(*shlex.split(command)[1:], "-p", "no:cacheprovider")
    replayed = again.stdout.str()
    assert again.ret == 1, replayed[-3000:]
    assert NEMESIS.search(replayed).group(1) == fingerprint.group(1), "another schedule ran"  # type: ignore[union-attr]
    assert failure_of(replayed) == failure_of(text)
    assert REPLAY.search(replayed).group(2) == str(seed)  # type: ignore[union-attr]
    other = Schedule.generate(
        seed + 1, ["A", "B", "C"], 3.0, KINDS, mean_gap=0.5, fault_seconds=(0.3, 1.5)
    )
    assert other.fingerprint() != fingerprint.group(1), "the seed does not rule the schedule"
