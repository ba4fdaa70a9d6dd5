"""Determinism is a property of the simulator: one seed, one history, bit for bit, whatever
Python's hash seed; another seed, another history. Shown on a thousand peers with faults
(a partition and churn that kills peers), run as `peerlab sim run` in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim

SWARM = {"peers": 1000, "seconds": 20, "files": 20, "bootstrap": 0, "dht_friends": 0}
SWARM |= {"poll": 10, "churn_every": 5}


def sim_run(tmp_path: Path, seed: int, hash_seed: str, label: str) -> dict:
    params = [arg for key, value in SWARM.items() for arg in ("--param", f"{key}={value}")]
    command = [sys.executable, "-m", "peerlab", "sim", "run", "--scenario", "swarm"]
    done = subprocess.run(
        [*command, "--seed", str(seed), "--json", "--results", str(tmp_path / label), *params],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=900,
    )
    # Exit 1 is a run whose verdict failed (20 s is short for every file to arrive): its
    # history is what is compared here.
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout)


def test_one_seed_one_history_under_any_hash_seed(tmp_path: Path) -> None:
    first = sim_run(tmp_path, 7, "0", "first")
    again = sim_run(tmp_path, 7, "1", "again")
    other = sim_run(tmp_path, 8, "0", "other")
    assert first["history_sha256"] == again["history_sha256"], "a seed did not replay"
    history = (tmp_path / "first" / "history.jsonl").read_bytes()
    assert history == (tmp_path / "again" / "history.jsonl").read_bytes()
    assert other["history_sha256"] != first["history_sha256"], "the seed rules nothing"
    entries = [json.loads(line) for line in history.splitlines()]
    faults = {e["value"].get("kind") for e in entries if e["type"] == "fault"}
    assert "partition" in faults, faults
    assert any(e["f"] == "churn_step" and e["data"]["left"] for e in entries), "no churn"
    assert sum(e["f"] == "node_started" for e in entries) >= 1000
