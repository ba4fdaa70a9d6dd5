"""syncpeer's cores run many to a process on a virtual clock: nodes converge, each node has
its own mutants, and a seed replays bit for bit whatever Python's hash seed is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sync_sim import SyncSim, scenario

from syncpeer.core.mutants import Mutants

HERE = Path(__file__).parent


def test_cores_in_one_process_converge_through_friends_of_friends() -> None:
    sim = SyncSim(seed=3)
    a, b, c = (sim.add(name) for name in "ABC")
    sim.befriend(a, b)
    sim.befriend(b, a, c)
    sim.befriend(c, b)
    published = sim.publish(a, "note.txt", b"from A")
    sim.run_for(5.0)
    held = {peer.name: peer.store.current("note.txt") for peer in (a, b, c)}
    assert all(file is not None and file.sha256 == published.sha256 for file in held.values())
    assert c.engine.counters.fetches == {f"note.txt@1@{a.fingerprint}": 1}


def test_two_nodes_in_one_process_run_different_mutants() -> None:
    sim = SyncSim(seed=4)
    a = sim.add("A")
    honest, mutant = sim.add("B"), sim.add("C", Mutants.of(["refetch-held"]))
    sim.befriend(honest, a)
    sim.befriend(mutant, a)
    sim.publish(a, "note.txt", b"from A")
    sim.run_for(10.0)
    key = f"note.txt@1@{a.fingerprint}"
    assert honest.engine.counters.fetches[key] == 1
    assert mutant.engine.counters.fetches[key] >= 5, "refetch-held fetches every round"
    assert honest.store.mutants != mutant.store.mutants


def test_a_seeded_run_replays_bit_for_bit_under_any_hash_seed() -> None:
    """Sets of strings iterate in another order under another PYTHONHASHSEED: a core whose
    decisions followed such an order would print another digest."""

    def digest(seed: int, hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "core_digest.py", str(seed)],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    first = digest(5, "0")
    assert digest(5, "1") == first
    assert first.split()[0] == scenario(5), "the same in this process"
    assert scenario(6) != scenario(5), "another seed, another run"
