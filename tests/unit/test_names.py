"""Hostile names never become paths: refused with exit 2 before anything is made or removed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import PeerlabError, UsageError
from peerlab.names import check_name, remove_tree
from peerlab.snapshot import snapshot_dir

HOSTILE = ["../../evil", "/abs/path", "", "x" * 65, ".", "..", ".hidden", "a/b", "a\0b", "-rf"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="is not usable") as caught:
        check_name(name, "peer", "name")
    assert caught.value.field == "name"
    assert "letters, digits" in (caught.value.hint or "")


@pytest.mark.parametrize("name", ["A", "node-1", "kv_2.b", "x" * 64, "9"])
def test_safe_names_pass(name: str) -> None:
    assert check_name(name, "peer", "name") == name


@pytest.mark.parametrize("name", HOSTILE)
def test_snapshot_names_are_checked(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        snapshot_dir(name, tmp_path)


def test_remove_tree_stays_inside_its_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "work").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (root / "link").symlink_to(outside)
    for path in (outside, root / ".." / "outside", root, root / "link" / "..", Path("/")):
        with pytest.raises(PeerlabError, match="refused to remove"):
            remove_tree(path, root)
    remove_tree(root / "link", root)  # the link goes, not what it points to
    assert (outside / "precious").read_text() == "keep me"
    remove_tree(root / "work", root)
    assert not (root / "work").exists()


@pytest.mark.parametrize("name", ["../../evil", "/abs/path"])
def test_environment_refuses_hostile_peer_names(name: str, tmp_path: Path) -> None:
    with Environment("names", fabric=False, workdir=tmp_path / "work") as env:
        with pytest.raises(UsageError, match="peer name"):
            env.start("./tests/fixtures/httpd.toml", [name])
        assert env.nodes == {}
        assert not (tmp_path / "evil").exists() and not Path("/abs/path").exists()
        assert not (tmp_path / "work" / "nodes").exists()


def test_environment_refuses_a_hostile_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="environment name"):
        Environment("../escape", workdir=tmp_path / "work")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("env_name", ["/some/dir", "../../evil", "", "a" * 80])
def test_cli_refuses_hostile_env_names_before_touching_anything(
    env_name: str, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    (victim / "work").mkdir(parents=True)
    (victim / "work" / "notes.txt").write_text("mine")
    name = str(victim) if env_name == "/some/dir" else env_name
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "peerlab", "--env", name, "up", "--peers", "1"],
        env={**os.environ, "PEERLAB_HOME": str(home), "NO_COLOR": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "environment name" in result.stderr and "fix:" in result.stderr
    assert (victim / "work" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in victim.iterdir()) == ["work"]
    assert not home.exists()
