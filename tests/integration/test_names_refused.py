"""Hostile names never become paths: an Environment and the CLI refuse them with exit 2
before anything is created or removed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import UsageError


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
