"""After a runner is SIGKILLed, its namespaces, links, nftables table and policy route are
still there (nothing can clean up inside a killed process); the next run's sweep removes
every one of them, and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from peerlab.reaper import sweep
from peerlab.wait import wait_until

from .conftest import need_netns

pytestmark = pytest.mark.netns

RUNNER = """
import json, sys, time
from peerlab.env import Environment
env = Environment("leftover", backend="netns")
env.start(sys.argv[1], 2)
hub = env.backend.hub
print(json.dumps({"tag": hub.tag, "mark": hub.mark, "table": hub.table,
                  "netns": [hub.netns(n.index) for n in env.nodes.values()],
                  "links": [hub.link(n.index) for n in env.nodes.values()],
                  "pids": [n.pid for n in env.nodes.values()]}), flush=True)
time.sleep(600)
"""


def leftovers(made: dict) -> dict[str, list[str]]:
    """What of `made` the machine still has, as `ip` and `nft` list it."""

    def listing(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    namespaces, links = listing("ip", "netns", "list"), listing("ip", "-o", "link")
    ruleset, rules = listing("nft", "list", "ruleset"), listing("ip", "rule")
    return {
        "netns": [name for name in made["netns"] if name in namespaces.split()],
        "links": [link for link in made["links"] if f" {link}@" in links or f" {link}:" in links],
        "nft": [made["table"]] if f"table inet {made['table']} " in ruleset else [],
        "rules": [line for line in rules.splitlines() if f"{made['mark']:#x}" in line],
    }


def test_a_killed_runners_plumbing_is_swept(relay: Callable[..., Path]) -> None:
    need_netns()
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(relay())], stdout=subprocess.PIPE, text=True
    )
    try:
        assert runner.stdout is not None
        made = json.loads(runner.stdout.readline())
        found = leftovers(made)
        assert found["netns"] == made["netns"] and found["links"] == made["links"], found
        assert found["nft"] == [made["table"]] and len(found["rules"]) == 1, found
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    # The launcher ends the nodes when its runner dies; the plumbing stays.
    for pid in made["pids"]:
        wait_until(lambda pid=pid: not _alive(pid), 10, what=f"node {pid} to end")
    still = leftovers(made)
    assert still["netns"] and still["links"] and still["nft"] and still["rules"], still
    swept = sweep()
    assert any(line.startswith("leftover-") for line in swept), swept
    assert leftovers(made) == {"netns": [], "links": [], "nft": [], "rules": []}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
