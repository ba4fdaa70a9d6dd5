"""Nodes with addresses of their own: peers see each other's real address, the fabric tells
links apart by it, and its faults apply by source and destination (netns backend)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.wait import wait_until

from .conftest import get

pytestmark = pytest.mark.netns


def fetch(env: Environment, src: str, dst: str) -> dict:
    """`src` dials `dst` itself (node to node, through the fabric)."""
    target = env.node(dst).url("http", "/whoami")
    return get(env.node(src).url("http", f"/fetch?url={target}"))


def test_a_node_sees_its_peer_at_the_peers_own_address(
    netns_env: Environment, relay: Callable[..., Path]
) -> None:
    env = netns_env
    nodes = env.start(str(relay()), 3)
    block = ipaddress.IPv4Network(env.backend.describe()["network"])
    assert len({n.address for n in nodes}) == 3
    for node in nodes:
        assert ipaddress.IPv4Address(node.address) in block
        assert node.address == node.bind_address  # one real address, the system's own port
    seen = fetch(env, "A", "B")
    assert seen["ok"], seen
    assert seen["body"]["peer"].split(":")[0] == env.node("A").address
    # The harness dials from the host's address on the block, never through the fabric.
    assert get(env.node("B").url("http", "/whoami"))["peer"].split(":")[0] == str(block[1])
    proxy = next(p for p in env.net.show()["proxies"] if p["node"] == "B" and p["port"] == "http")
    assert proxy["accepted"] == 1  # A's connection, exactly, and not the harness's


def test_partitions_and_one_way_cuts_apply_by_address(
    netns_env: Environment, relay: Callable[..., Path]
) -> None:
    env = netns_env
    env.start(str(relay()), 3)
    assert fetch(env, "A", "B")["ok"]
    env.net.partition([["A"], ["B", "C"]])
    assert not fetch(env, "A", "B")["ok"]
    assert not fetch(env, "B", "A")["ok"]
    assert fetch(env, "B", "C")["ok"]
    env.net.heal()
    wait_until(lambda: fetch(env, "A", "B")["ok"], 10, what="A to reach B after the heal")
    # One way: A's packets to B are cut, so neither A's request nor an answer to B's gets
    # through; C still reaches both.
    env.net.partition([["A"], ["B"]], one_way=True)
    assert not fetch(env, "A", "B")["ok"]
    assert fetch(env, "C", "B")["ok"] and fetch(env, "C", "A")["ok"]


def test_latency_applies_to_the_named_link_only(
    netns_env: Environment, relay: Callable[..., Path]
) -> None:
    env = netns_env
    env.start(str(relay()), 3)
    env.net.latency(2000, src="A", dst="B")
    began = time.monotonic()
    assert fetch(env, "A", "B")["ok"]
    assert time.monotonic() - began >= 2.0
    # Had the toxic reached C's link to B too, this would take 2 s at the least.
    began = time.monotonic()
    assert fetch(env, "C", "B")["ok"]
    assert time.monotonic() - began < 1.5
