"""libfaketime's per-process segments in /dev/shm: a killed skewed node leaves a pair, and a
later process that gets its pid could not start; they are swept before each skewed start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.nemesis.clock import SHARED_MEMORY, sweep_stale_segments


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_segments_of_gone_processes_are_removed_and_the_rest_kept(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    names = [
        f"faketime_shm_{dead}",
        f"sem.faketime_sem_{dead}",
        f"faketime_shm_{alive}",
        f"sem.faketime_sem_{alive}",
        f"faketime_shm_{dead}.bak",  # not libfaketime's
        "other_segment",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"12345678")
    assert sweep_stale_segments(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


def test_a_missing_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep_stale_segments(tmp_path / "absent") == 0


def test_the_machines_shared_memory_is_swept() -> None:
    if not SHARED_MEMORY.is_dir():
        return
    dead = _dead_pid()
    stale = SHARED_MEMORY / f"faketime_shm_{dead}"
    stale.write_bytes(b"12345678")
    try:
        assert sweep_stale_segments() >= 1
        assert not stale.exists()
    finally:
        stale.unlink(missing_ok=True)


def test_every_start_sweeps_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """peerlab's start-up sweep (the reaper's) removes them too: a runner that was killed
    with its skewed nodes leaves nothing there for the next one."""
    from peerlab import reaper

    monkeypatch.setenv("PEERLAB_RUNTIME", str(tmp_path / "runtime"))
    monkeypatch.setattr(reaper, "sweep_stale_segments", lambda: sweep_stale_segments(tmp_path))
    stale = tmp_path / f"sem.faketime_sem_{_dead_pid()}"
    stale.write_bytes(b"12345678")
    reaper.sweep()
    assert not stale.exists()
