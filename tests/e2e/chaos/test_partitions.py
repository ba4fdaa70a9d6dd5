"""Partitions of every shape: asymmetric, bridge, rolling; all converge after the heal
(TC-741 ... TC-743)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.fabric import bridge, one_way, rolling
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain

from .conftest import wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]


def converges(env: Environment) -> None:
    verdicts = check_sync(env, timeout=30)
    assert all(v.ok for v in verdicts), explain(verdicts)


def test_asymmetric_partition(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-741: A and B cannot reach C and D, who still reach them: C and D pull A's file,
    A and B never see C's until the heal; then everyone converges."""
    env = peerlab_env
    syncpeer_net(4)
    with env.net.apply(one_way(["A", "B"], ["C", "D"])):
        from_a = env.client("A").publish("west.txt", b"from A")
        from_c = env.client("C").publish("east.txt", b"from C")
        wait_holds(
            env,
            "BCD",
            "west.txt",
            lambda f: f["sha256"] == from_a["sha256"],
            "C and D to pull A's file across the one-way cut",
        )
        wait_holds(env, "D", "east.txt", lambda f: f["sha256"] == from_c["sha256"], "D")
        for node in "AB":
            assert env.client(node).file("east.txt") is None, f"{node} crossed the cut"
    converges(env)


def test_bridge_partition(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-742: A, B | C | D, E where only C reaches both sides: files relay through C while
    the sides cannot talk, and everything converges after the heal."""
    env = peerlab_env
    syncpeer_net(5)
    with env.net.apply(bridge(["A", "B"], "C", ["D", "E"])):
        from_a = env.client("A").publish("left.txt", b"from the left")
        from_e = env.client("E").publish("right.txt", b"from the right")
        wait_holds(
            env,
            "CDE",
            "left.txt",
            lambda f: f["sha256"] == from_a["sha256"],
            "A's file to cross the bridge",
        )
        wait_holds(
            env,
            "ABC",
            "right.txt",
            lambda f: f["sha256"] == from_e["sha256"],
            "E's file to cross the bridge",
        )
        env.client("B").publish("left.txt", b"edited on the left")
    converges(env)


def test_rolling_partition(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-743: one peer after another is cut off for a second while every peer keeps
    writing; after the heal all converge and no acknowledged write is lost."""
    env = peerlab_env
    syncpeer_net(4)
    with env.net.apply(rolling(1.0)):
        deadline = env.clock.monotonic() + 5
        i = 0
        while env.clock.monotonic() < deadline:
            node = "ABCD"[i % 4]
            env.client(node).publish(f"roll-{i % 5}.txt", f"write {i} on {node}".encode())
            i += 1
            env.clock.sleep(0.3)
    converges(env)
