"""Benchmarks refuse what no run could measure: one line naming the option and the fix,
exit 2, before anything starts (no environment, no child process, no JSON)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = [
    (["proxy", "--megabytes", "0"], "--megabytes is 0", "use 1 or more"),
    (["proxy", "--megabytes", "-5"], "--megabytes is -5", "use 1 or more"),
    (["proxy", "--pings", "0"], "--pings is 0", "use 10 or more"),
    (["proxy", "--pings", "9"], "--pings is 9", "use 10 or more"),
    (["proxy", "--repeats", "0"], "--repeats is 0", "use 1 or more"),
    (["proxy", "--backend", "sim"], "--backend is 'sim'", "use local or netns"),
    (["proxy", "--backend", "docker"], "--backend is 'docker'", "use local or netns"),
    (["proxy", "--backend", "netns", "--pings", "3"], "--pings is 3", "use 10 or more"),
    (["failover", "--members", "2"], "--members is 2", "use 3 or more"),
    (["failover", "--members", "0"], "--members is 0", "use 3 or more"),
    (["dht", "--lookups", "-1"], "--lookups is -1", "use 0 or more"),
]


@pytest.mark.parametrize(("arguments", "said", "fix"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_benchmark_options_exit_2_before_starting(
    tmp_path: Path, arguments: list[str], said: str, fix: str
) -> None:
    home = tmp_path / "home"
    run = subprocess.run(
        [sys.executable, "-m", "peerlab", "bench", *arguments, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PEERLAB_HOME": str(home)},
        timeout=120,
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert said in lines[0] and f"fix: {fix}" in lines[0], lines[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""  # no measurement was printed
    assert not home.exists()  # nothing created: no environment, no lease, no sweep record
