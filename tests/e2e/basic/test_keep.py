"""--peerlab-keep: a failed test's network stays up under a supervisor the CLI can attach to."""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from peerlab.testing import wait_until

MANIFEST = Path(__file__).parents[2] / "fixtures" / "httpd.toml"


def test_keep_leaves_the_failed_network_for_the_cli(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PEERLAB_HOME", str(home))
    pytester.makepyfile(f"""
        def test_breaks(peerlab_env):
            peerlab_env.start({str(MANIFEST)!r}, 2)
            peerlab_env.net.latency(5, src="A", dst="B")
            assert False, "deliberate"
    """)
    result = pytester.runpytest_subprocess("--peerlab-keep", "-s")
    result.assert_outcomes(failed=1)
    match = re.search(r"peerlab --env (\S+) status", result.stdout.str())
    assert match, result.stdout.str()
    name = match.group(1)

    def peerlab(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "peerlab", "--env", name, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PEERLAB_HOME": str(home)},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        status = json.loads(peerlab("status", "--json"))
        nodes = {n["name"]: n for n in status["nodes"]}
        assert sorted(nodes) == ["A", "B"]
        assert all(n["state"] == "running" for n in nodes.values())
        with urllib.request.urlopen(f"http://{nodes['A']['address']}:8000/", timeout=5) as r:
            assert r.status == 200
        faults = status["net"]["faults"]
        assert any(f.get("src") == "A" and f.get("dst") == "B" for f in faults), faults
        pids = [n["pid"] for n in nodes.values()]
    finally:
        peerlab("down")
    wait_until(
        lambda: (
            not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
        ),
        10,
        what="kept nodes to stop after down",
    )
