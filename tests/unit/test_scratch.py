"""Where simulated runs keep their files: in memory (`peerlab.home.scratch_dir`), in a folder
that is this user's own; never in one another user made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peerlab import backends, home


@pytest.fixture
def shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $PEERLAB_SCRATCH, the runtime dir in tmp_path/runtime, and a stand-in /dev/shm."""
    monkeypatch.delenv("PEERLAB_SCRATCH", raising=False)
    monkeypatch.setenv("PEERLAB_RUNTIME", str(tmp_path / "runtime"))
    shared = tmp_path / "shm"
    shared.mkdir()
    monkeypatch.setattr(home, "SHARED_MEMORY", shared)
    return shared


def test_the_scratch_space_is_chosen_by_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLAB_SCRATCH", str(tmp_path / "scratch"))
    assert home.scratch_dir(create=False) == tmp_path / "scratch"
    assert not (tmp_path / "scratch").exists()  # asked only: nothing made
    assert home.scratch_dir() == tmp_path / "scratch"
    assert (tmp_path / "scratch").is_dir()


def test_else_it_is_this_users_folder_in_shared_memory(shm: Path) -> None:
    chosen = home.scratch_dir()
    assert chosen == shm / f"peerlab-{os.getuid()}"
    assert chosen.stat().st_mode & 0o777 == 0o700


def test_asking_where_it_is_creates_nothing(shm: Path, tmp_path: Path) -> None:
    assert home.scratch_dir(create=False) == tmp_path / "runtime"  # not there yet
    assert list(shm.iterdir()) == []


def test_a_link_planted_there_is_not_followed(shm: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (shm / f"peerlab-{os.getuid()}").symlink_to(elsewhere)
    assert home.scratch_dir() == tmp_path / "runtime"


def test_without_shared_memory_it_is_the_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEERLAB_SCRATCH", raising=False)
    monkeypatch.setenv("PEERLAB_RUNTIME", str(tmp_path / "runtime"))
    monkeypatch.setattr(home, "SHARED_MEMORY", tmp_path / "absent")
    assert home.scratch_dir() == tmp_path / "runtime"


def test_only_the_simulator_keeps_its_files_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLAB_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.setenv("PEERLAB_RUNTIME", str(tmp_path / "runtime"))
    assert backends.scratch("sim") == tmp_path / "scratch"
    assert backends.scratch("local") == tmp_path / "runtime"
