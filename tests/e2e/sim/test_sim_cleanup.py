"""A `peerlab sim run` stopped from outside leaves nothing behind: a SIGTERM unwinds it (its
environment's workdir, in the scratch space, removed on the way out), and what a SIGKILL
leaves is swept by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.reaper import sweep
from peerlab.testing import wait_until

pytestmark = pytest.mark.sim

# Far longer than the test waits: the run is stopped in the middle.
LONG = ["--param", "peers=20", "--param", "seconds=1000000", "--param", "files=2"]


def _start(tmp_path: Path, runtime: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "peerlab", "sim", "run", "--scenario", "swarm", *LONG]
    return subprocess.Popen(
        [*command, "--results", str(tmp_path / "results")],
        env={
            **os.environ,
            "PEERLAB_RUNTIME": str(runtime),
            "PEERLAB_SCRATCH": str(runtime / "scratch"),
            "PEERLAB_HOME": str(tmp_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _workdirs(runtime: Path) -> list[Path]:
    envs = runtime / "scratch" / "envs"  # a simulated run's files are kept in the scratch
    return sorted(envs.iterdir()) if envs.is_dir() else []


def _owners(runtime: Path) -> list[Path]:
    owners = runtime / "owners"
    return sorted(owners.glob("*.json")) if owners.is_dir() else []


def _running(tmp_path: Path, runtime: Path) -> subprocess.Popen[bytes]:
    run = _start(tmp_path, runtime)
    try:
        wait_until(lambda: _workdirs(runtime), 60, what="the run's workdir")
        # The history grows once the simulation runs: the run is under way, not starting.
        wait_until(
            lambda: any((d / "history.jsonl").stat().st_size > 0 for d in _workdirs(runtime)),
            60,
            what="the run's history",
        )
    except BaseException:
        run.kill()
        run.wait()
        raise
    return run


def test_a_sigtermed_run_removes_its_workdir(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    run = _running(tmp_path, runtime)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    assert _workdirs(runtime) == [], "the workdir outlived a SIGTERM"
    assert _owners(runtime) == [], "the reaper's state outlived a SIGTERM"


def test_what_a_sigkilled_run_leaves_is_swept_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"
    run = _running(tmp_path, runtime)
    run.kill()
    run.wait(timeout=60)
    left = _workdirs(runtime)
    assert left, "a SIGKILL cannot clean up: the sweep has something to do"
    monkeypatch.setenv("PEERLAB_RUNTIME", str(runtime))
    monkeypatch.setenv("PEERLAB_SCRATCH", str(runtime / "scratch"))
    assert len(sweep()) == 1
    assert _workdirs(runtime) == [] and _owners(runtime) == []
