"""`peerlab up` that fails, times out or is interrupted leaves nothing running, and a shell
that ran `up` and `down` reaps its supervisor at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from peerlab import supervisor
from peerlab.testing import wait_until

# Nodes that start but never become ready.
NEVER_READY = """
[system]
name = "slowpoke"
[launch]
command = ["sleep", "600"]
[readiness]
type = "log"
pattern = "never printed"
timeout = 300
"""


def processes_under(home: Path) -> list[psutil.Process]:
    """Live processes working in a folder under `home` (nodes run in their data dirs)."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        cwd = proc.info.get("cwd")
        if cwd and cwd.startswith(str(home)) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def test_a_timeout_stops_what_was_started(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "slow.toml"
    manifest.write_text(NEVER_READY)
    result = cli("up", "--system", str(manifest), "--peers", "3", "--timeout", "4", check=False)
    assert result.returncode == 1 and "not up within 4s" in result.stderr, result.stderr
    assert processes_under(tmp_path / "home") == []
    assert "running" not in cli("status", check=False).stdout


def test_ctrl_c_during_up_stops_the_network_and_says_so(tmp_path: Path) -> None:
    manifest = tmp_path / "slow.toml"
    manifest.write_text(NEVER_READY)
    home = tmp_path / "home"
    up = subprocess.Popen(
        [sys.executable, "-m", "peerlab", "up", "--system", str(manifest), "--peers", "3"],
        env={**os.environ, "PEERLAB_HOME": str(home), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(processes_under(home)) >= 3, 60, what="the nodes to start")
    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=120)
    assert up.returncode == 130
    assert "interrupted" in err and "nothing is running" in err
    assert processes_under(home) == []


def test_down_after_up_in_one_process_reaps_the_supervisor(tmp_path: Path, monkeypatch) -> None:
    """As `peerlab shell` does: the supervisor is this process's child; once it has ended it
    must not be waited for as if it still ran (it was a zombie, and `down` hung 60 s)."""
    monkeypatch.setenv("PEERLAB_HOME", str(tmp_path / "home"))
    manifest = tmp_path / "quick.toml"
    manifest.write_text(NEVER_READY.replace('type = "log"', 'type = "none"'))
    state = supervisor.launch("shell", str(manifest), 1, None, False, False, 60)
    began = time.monotonic()
    assert supervisor.shutdown("shell", timeout=60)
    assert time.monotonic() - began < 30  # the hang was the full 60 s
    zombies = [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]
    assert state["pid"] not in [z.pid for z in zombies]


def test_down_does_not_wait_on_the_connection_that_asked(tmp_path: Path, monkeypatch) -> None:
    """The shutdown call's unread body kept its connection lingering (aiohttp: 10 s) while
    the supervisor closed its server: `peerlab down` took 10.4 s about every other time,
    against 0.4 s."""
    lingering = 10.0
    monkeypatch.setenv("PEERLAB_HOME", str(tmp_path / "home"))
    manifest = tmp_path / "quick.toml"
    manifest.write_text(NEVER_READY.replace('type = "log"', 'type = "none"'))
    for attempt in range(4):
        name = f"quick{attempt}"
        supervisor.launch(name, str(manifest), 1, None, False, False, 60)
        began = time.monotonic()
        assert supervisor.shutdown(name, timeout=60)
        took = time.monotonic() - began
        assert took < lingering / 2, f"down took {took:.1f}s: the server lingered"
