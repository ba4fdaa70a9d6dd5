"""Coral's mesh: three nodes form a WireGuard mesh (wireguard-go) over their own addresses,
each with a unique mesh address 10.42.0.x; a ping crosses it; a partition of the underlying
UDP link stops it and the tunnel is back within the keepalive interval of the heal; a peer
given the wrong public key never gets a tunnel. The harness plays the mesh's coordinator
(the `wgmesh` system: peerlab/systems/wgmesh.toml). Needs the netns backend (nodes create
devices, so they are granted NET_ADMIN in their namespaces) and root (for /dev/net/tun)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.node import Node
from peerlab.testing import require_program, wait_until

pytestmark = [pytest.mark.connectivity, pytest.mark.netns]

KEEPALIVE = 5.0  # seconds, the manifest's persistent keepalive
REKEY_TIMEOUT = 5.0  # WireGuard retries a handshake after this long
# Seconds for the first handshakes: a node told its peers before they know it is refused,
# and tries again a REKEY_TIMEOUT later; a loaded machine answers the coordinator slowly.
FORMED = 30.0


def call(node: Node, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(node.url("api", path), data=data)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def ping(src: Node, mesh_address: str) -> bool:
    return bool(call(src, f"/ping?to={mesh_address}")["ok"])


def views(env: Environment, *names: str) -> Any:
    """What went wrong, for a failed wait: each node's view of its peers, and the fabric's
    counters on the WireGuard ports."""

    def describe() -> str:
        views = {name: call(env.node(name), "/wg")["peers"] for name in names}
        ports = [p for p in env.net.show()["proxies"] if p["port"] == "wg"]
        return f"peers: {views}; proxies: {ports}"

    return describe


def formed(env: Environment, infos: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    """Wait until a ping crosses the mesh from each src to each dst of `pairs`."""
    for src, dst in pairs:
        wait_until(
            lambda src=src, dst=dst: ping(env.node(src), infos[dst]["mesh_address"]),
            FORMED,
            what=f"a ping from {src} to {dst} across the mesh",
            describe=views(env, src, dst),
        )


def wrong_key() -> str:
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    return subprocess.run(
        ["wg", "pubkey"], input=private, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def mesh(peerlab_env: Environment) -> Any:
    """start(wrong={(node, peer)}) -> {name: info}: three mesh nodes, each told the others'
    keys, endpoints and mesh addresses (node is told a wrong key for peer, if named)."""
    if not peerlab_env.backend.capabilities.node_capabilities:
        pytest.skip(
            f"the {peerlab_env.backend.name} backend cannot grant NET_ADMIN; "
            "run with --peerlab-backend netns"
        )
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        pytest.skip("this user cannot open /dev/net/tun (a user namespace cannot); run as root")
    for program, package in (("wireguard-go", "wireguard-go"), ("wg", "wireguard-tools")):
        require_program(program, package)
    require_program("ping", "iputils-ping")

    def start(wrong: frozenset[tuple[str, str]] = frozenset()) -> dict[str, dict[str, Any]]:
        nodes = peerlab_env.start("wgmesh", 3)
        infos = {node.name: call(node, "/info") for node in nodes}
        for node in nodes:
            peers = [
                {**info, "public_key": wrong_key()} if (node.name, name) in wrong else info
                for name, info in infos.items()
                if name != node.name
            ]
            call(node, "/peers", peers)
        return infos

    return start


def test_three_nodes_form_a_mesh_and_a_ping_crosses_it(peerlab_env: Environment, mesh: Any) -> None:
    infos = mesh()
    env = peerlab_env
    assert sorted(info["mesh_address"] for info in infos.values()) == [
        "10.42.0.1",
        "10.42.0.2",
        "10.42.0.3",
    ]
    formed(env, infos, [("A", "B"), ("B", "C"), ("C", "A")])
    # Observed address = advertised address: B sees A's tunnel come from A's own address
    # and port, through the fabric.
    seen = call(env.node("B"), "/wg")["peers"][infos["A"]["public_key"]]
    assert seen["endpoint"] == infos["A"]["endpoint"] and seen["latest_handshake"] > 0
    wg = next(p for p in env.net.show()["proxies"] if p["node"] == "B" and p["port"] == "wg")
    assert wg["sent"] > 0, wg  # the tunnel's datagrams crossed B's proxy


def test_a_partition_of_the_underlay_stops_the_mesh_and_heal_restores_it(
    peerlab_env: Environment, mesh: Any
) -> None:
    infos = mesh()
    env = peerlab_env
    a, b = env.node("A"), env.node("B")
    formed(env, infos, [("A", "B"), ("B", "C")])
    env.net.partition([["A"], ["B", "C"]])
    for _ in range(3):
        assert not ping(a, infos["B"]["mesh_address"]), "a ping crossed a cut underlay"
    assert ping(b, infos["C"]["mesh_address"]), "B and C are on the same side"
    env.net.heal()
    healed = time.monotonic()
    wait_until(
        lambda: ping(a, infos["B"]["mesh_address"]),
        KEEPALIVE,
        what="the tunnel from A to B within the keepalive interval of the heal",
    )
    assert time.monotonic() - healed <= KEEPALIVE


def test_a_peer_with_the_wrong_public_key_never_gets_a_tunnel(
    peerlab_env: Environment, mesh: Any
) -> None:
    infos = mesh(wrong=frozenset({("C", "A")}))
    env = peerlab_env
    a, c = env.node("A"), env.node("C")
    formed(env, infos, [("A", "B"), ("C", "B")])  # the mesh works but for C's key for A
    # Through two handshake retries: neither side accepts the other.
    deadline = time.monotonic() + 2 * REKEY_TIMEOUT
    while time.monotonic() < deadline:
        assert not ping(c, infos["A"]["mesh_address"]), "C reached A with a wrong key for it"
        assert not ping(a, infos["C"]["mesh_address"]), "A reached C, which has a wrong key"
    a_sees_c = call(a, "/wg")["peers"][infos["C"]["public_key"]]
    assert a_sees_c["latest_handshake"] == 0, a_sees_c
    assert all(p["latest_handshake"] == 0 for k, p in call(c, "/wg")["peers"].items()
               if k != infos["B"]["public_key"])  # fmt: skip
