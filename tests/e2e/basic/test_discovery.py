"""Discovery and scale through syncpeer's DHT (TC-001, TC-201, TC-202 and TC-203 short forms),
on real processes and on the simulator.

The full-size forms (TC-202 at 100 peers, TC-203 for 10 minutes) are in tests/e2e/stress.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced, assert_friends
from peerlab.testing import wait_until

# The scenario bodies live next to their full-size forms in tests/e2e/stress.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stress"))
from dht_scenarios import churn_scenario, mesh_rss_scenario, random_graph_scenario

pytestmark = pytest.mark.sim


def test_two_peer_discovery_via_bootstrap(peerlab_env: Environment) -> None:
    """TC-001: with a bootstrap node, each of two new peers finds the other by fingerprint
    within 5 s of starting; the XOR distances the lookup reports are correct; they become
    friends by fingerprint alone and a file syncs."""
    env = peerlab_env
    env.start("syncpeer", 1, role="bootstrap")
    began = env.clock.monotonic()
    env.start("syncpeer", ["B", "C"])
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    fingerprint = {name: adapter.fingerprint_of(name) for name in "BC"}

    for looker, target in (("B", "C"), ("C", "B")):
        remaining = 5.0 - (env.clock.monotonic() - began)
        result = env.wait_until(
            lambda looker=looker, target=target: (
                (found := adapter.dht_lookup(looker, target))["found"] and found
            ),
            max(remaining, 0.1),
            what=f"{looker} to find {target} in the DHT within 5 s of starting",
        )
        key = int(fingerprint[target], 16)
        assert result["record"]["fingerprint"] == fingerprint[target]
        assert result["record"]["address"] == f"{env.node(target).address}:7400"
        assert int(result["distance"], 16) == int(fingerprint[looker], 16) ^ key
        assert result["distance_bits"] == (int(fingerprint[looker], 16) ^ key).bit_length()
        for hop in result["queried"]:
            assert int(hop["distance"], 16) == int(hop["id"], 16) ^ key, hop
        assert result["path"][-1]["id"] == result["holder"]["id"]
        assert result["hops"] == len(result["path"]) >= 1

    adapter.friend_add("B", fingerprint["C"])  # a fingerprint of a peer here: both ways
    assert_friends(env, "B", "C")
    friend = next(f for f in adapter.client(env.node("B")).friends())
    assert friend["address"] == f"{env.node('C').address}:7400"
    content = b"found you through the DHT\n" + os.urandom(32)
    adapter.client(env.node("B")).publish("hello.txt", content, [fingerprint["C"]])
    assert_file_synced(env, "hello.txt", ["C"], content=content, timeout=10)


def test_unknown_fingerprint_is_refused(peerlab_env: Environment) -> None:
    """A fingerprint nobody publishes: the friend add fails with 404 naming it, and nothing
    is added."""
    env = peerlab_env
    env.start("syncpeer", 1, role="bootstrap")
    env.start("syncpeer", 2)
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.wait_joined(timeout=10)
    nobody = "0" * 39 + "1"
    with pytest.raises(Exception, match=r"404.*not found in the DHT") as info:
        adapter.friend_add("B", nobody)
    assert nobody in str(info.value)
    assert adapter.client(env.node("B")).friends() == []


def test_many_peers_stop_restart_and_join_together(peerlab_env: Environment) -> None:
    """Peers stopped and restarted as a batch keep their addresses and identities and join
    the DHT again; peers added as a batch get fresh addresses that collide with nobody."""
    env = peerlab_env
    env.start("syncpeer", 1, role="bootstrap")
    names = [node.name for node in env.start("syncpeer", 12)]
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.wait_joined(names, timeout=20)
    before = {name: (env.node(name).address, adapter.fingerprint_of(name)) for name in names}
    batch = names[:10]
    stopped = env.stop_peers(batch)
    assert [peer["state"] for peer in stopped] == ["stopped"] * 10
    assert not any(env.node(name).alive for name in batch)
    restarted = env.restart_peers(batch)
    assert [peer["state"] for peer in restarted] == ["running"] * 10
    adapter.wait_joined(batch, timeout=20)
    for name in batch:
        assert adapter.client(env.node(name)).identity()["fingerprint"] == before[name][1]
        assert env.node(name).address == before[name][0]
    added = env.add_peers(5)
    addresses = [node.address for node in env.nodes.values()]
    assert len(set(addresses)) == len(addresses) == 18
    adapter.wait_joined([peer["name"] for peer in added], timeout=20)
    result = adapter.dht_lookup(added[0]["name"], batch[0])
    assert result["found"], result["reason"]


def test_full_mesh_of_ten(peerlab_env: Environment) -> None:
    """TC-201: 10 peers befriend each other by fingerprint (45 friendships); a file reaches
    all; every routing table keeps each bucket within k; no peer's RSS keeps growing."""
    mesh_rss_scenario(peerlab_env, peers=10, rounds=4)


def test_random_friend_graph_small(peerlab_env: Environment) -> None:
    """TC-202 (short form, 30 peers): a random friend graph of average degree 5 made by
    fingerprint; every lookup succeeds; 5 publishers' files reach their connected peers."""
    random_graph_scenario(peerlab_env, peers=30, degree=5, publishers=5)


def test_churn_short(peerlab_env: Environment) -> None:
    """TC-203 (short form): 20 peers, 2 leave and 2 join each period for 6 periods; each
    period's file reaches at least 95% of the publisher's live friends; nobody ends up
    isolated."""
    churn_scenario(peerlab_env, peers=20, periods=6, period=6.0)


def test_discovery_from_the_cli(tmp_path: Path) -> None:
    """By hand: `up --bootstrap`, `dht lookup`, `dht table`, `friend add` by fingerprint only,
    a file synced, `churn` for two periods, `down`."""
    env = {**os.environ, "PEERLAB_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "peerlab", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"peerlab {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    try:
        cli("up", "--peers", "6", "--bootstrap")
        lookup = json.loads(cli("dht", "lookup", "B", "C", "--json"))
        assert lookup["found"] and lookup["target_peer"] == "C" and lookup["looker"] == "B"
        fingerprint = lookup["target"]
        assert "found in" in cli("dht", "lookup", "B", fingerprint)
        table = json.loads(cli("dht", "table", "B", "--json"))
        assert table["joined"] and table["contacts"] >= 1
        assert "contacts in" in cli("dht", "table", "B")

        cli("friend", "add", "B", fingerprint)
        assert [f["peer"] for f in json.loads(cli("friend", "list", "C", "--json"))] == ["B"]
        note = tmp_path / "note.txt"
        note.write_text("found by fingerprint\n")
        cli("file", "add", "B", str(note), "--for", "C")
        assert (
            wait_until(
                lambda: cli("file", "cat", "C", "note.txt"),
                15,
                what="C to read note.txt",
            )
            == "found by fingerprint\n"
        )

        periods = [
            json.loads(line)
            for line in cli(
                "churn",
                "--leave",
                "1",
                "--join",
                "1",
                "--every",
                "500ms",
                "--periods",
                "2",
                "--json",
                "--seed",
                "5",
            ).splitlines()
        ]
        assert [p["period"] for p in periods] == [1, 2]
        assert all(len(p["left"]) == 1 and len(p["joined"]) == 1 for p in periods)
        assert "A" not in {name for p in periods for name in p["left"]}, "bootstrap left"
        states = {n["name"]: n["state"] for n in json.loads(cli("status", "--json"))["nodes"]}
        assert list(states.values()).count("running") == 6, states
    finally:
        subprocess.run(
            [sys.executable, "-m", "peerlab", "down", "--all"], env=env, capture_output=True
        )
