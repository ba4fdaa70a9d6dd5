"""Network plumbing for nodes in network namespaces: one environment's side of the host.

A `Hub` is what one environment adds to the host: its block of the dedicated range (the
host's address on it is every node's gateway), an nftables table of its own, and a policy
route for what that table marks. Each node is a network namespace with one address, linked
to the host by a veth pair; the host routes the node's address to its veth. Inside, a node
has a route to the block through the host and nothing else: it can reach the host and, only
through the fabric, the other nodes.

The table does three things, for addresses of the environment's block only:
- **divert** (prerouting): TCP and UDP from one node to another is taken by `tproxy` to the
  fabric's transparent listeners on the host address. Packets of connections the fabric
  already holds (a transparent socket, matched by `socket transparent`) are marked too; the
  mark routes them to the host (`ip rule fwmark ... lookup TABLE`, `local 0.0.0.0/0 dev lo`
  in TABLE), so the answers to the fabric's onward connections come back to it.
- **outside** (forward): nothing from or to the block is forwarded, so no node reaches
  anything outside the environment, even with a route of its own.
- **inbound** (input): a node may talk to the host only on the host's address in the block.

Everything is named with `peerlab` and the environment's tag (namespaces `peerlab-TAG-N`,
links `plTAGN`, table `peerlab_TAG`), so a sweep after a SIGKILLed runner removes exactly
what that runner made (`sweep`). The `ip` and `nft` programs do the work (batched), as an
operator would by hand; a later container backend plumbs a container's namespace the same
way after naming it (`ip netns attach`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peerlab.errors import PeerlabError

NETNS_DIR = "/run/netns"
RULE_PRIORITY = 100
INSIDE_AT_ONCE = 16  # namespaces configured side by side (an `ip` process each)


def world() -> int:
    """The network namespace this process sees as the host (its inode)."""
    return os.stat("/proc/self/ns/net").st_ino


@dataclass(frozen=True)
class Hub:
    """One environment's plumbing on the host."""

    tag: str  # 6 hex digits, part of every name
    network: ipaddress.IPv4Network  # the environment's block of the dedicated range

    @property
    def host(self) -> str:
        return str(self.network[1])

    @property
    def table(self) -> str:
        return f"peerlab_{self.tag}"

    @property
    def mark(self) -> int:
        """The packet mark and route table number: unique per block (blocks never overlap
        and are /29 or larger, so their addresses differ above the low three bits)."""
        return 0x20000000 | (int(self.network.network_address) >> 3)

    def netns(self, index: int) -> str:
        return f"peerlab-{self.tag}-{index}"

    def link(self, index: int) -> str:
        return f"pl{self.tag}{index}"  # at most 15 characters: 2 + 6 + up to 7 digits

    def netns_path(self, index: int) -> str:
        return f"{NETNS_DIR}/{self.netns(index)}"

    def record(self) -> dict[str, Any]:
        """What `sweep` needs to remove this hub's plumbing without its owner."""
        return {"tag": self.tag, "network": str(self.network), "world": world()}

    # ------------------------------------------------------------------ what is run

    def ruleset(self, tcp_port: int, udp_port: int) -> str:
        block, host, mark = self.network, self.host, f"{self.mark:#x}"
        between = f"ip saddr {block} ip daddr {block} ip daddr != {host}"
        # Declared, deleted and declared again in one transaction: an adopted network's
        # table (naming the listeners of the process that made it) is replaced whole.
        return f"""
table inet {self.table}
delete table inet {self.table}
table inet {self.table} {{
  chain divert {{
    type filter hook prerouting priority mangle; policy accept;
    {between} meta l4proto {{ tcp, udp }} socket transparent 1 meta mark set {mark} accept
    {between} meta l4proto tcp tproxy ip to {host}:{tcp_port} meta mark set {mark} accept
    {between} meta l4proto udp tproxy ip to {host}:{udp_port} meta mark set {mark} accept
  }}
  chain outside {{
    type filter hook forward priority filter; policy accept;
    ip saddr {block} drop
    ip daddr {block} drop
  }}
  chain inbound {{
    type filter hook input priority filter; policy accept;
    ip saddr {block} ip daddr != {block} drop
  }}
}}
"""

    def route_commands(self) -> str:
        return (
            f"rule add fwmark {self.mark:#x} lookup {self.mark} priority {RULE_PRIORITY}\n"
            f"route add local 0.0.0.0/0 dev lo table {self.mark}\n"
        )

    def attach_host_commands(self, index: int, address: str, create: bool = True) -> str:
        """Host side: the namespace (unless it exists), the veth pair with its inner end in
        the namespace, the host's address on the outer end, the route to the node."""
        link, netns = self.link(index), self.netns(index)
        made = f"netns add {netns}\n" if create else ""
        return made + (
            f"link add name {link} type veth peer name eth0 netns {netns}\n"
            f"link set dev {link} addrgenmode none\n"
            f"addr add {self.host}/32 dev {link}\n"
            f"link set dev {link} up\n"
            f"route add {address}/32 dev {link} src {self.host}\n"
        )

    def attach_node_commands(self, address: str) -> str:
        """Inside the namespace: its address, and a route to the block through the host."""
        return (
            "link set dev lo up\n"
            "link set dev eth0 addrgenmode none\n"
            f"addr add {address}/32 dev eth0\n"
            "link set dev eth0 up\n"
            f"route add {self.host}/32 dev eth0 scope link\n"
            f"route add {self.network} via {self.host} dev eth0 src {address}\n"
        )

    # ------------------------------------------------------------------ doing it

    async def create(self, tcp_port: int, udp_port: int, routes: bool = True) -> None:
        """The table (diverting to the fabric's listeners on these ports) and, with
        `routes`, the policy route that brings what it marks to the host."""
        await run_async(["nft", "-f", "-"], self.ruleset(tcp_port, udp_port))
        if routes:
            await run_async(["ip", "-batch", "-"], self.route_commands())

    async def attach(self, nodes: Mapping[int, str], create: bool = True) -> None:
        """Nodes {index: address}: their namespaces (`create`; else they are already named,
        as a container's would be by `ip netns attach`), veth pairs, addresses and routes.
        The host's side in one batch, then each namespace's (a few at a time)."""
        host = "".join(self.attach_host_commands(i, a, create) for i, a in nodes.items())
        await run_async(["ip", "-batch", "-"], host)
        limit = asyncio.Semaphore(INSIDE_AT_ONCE)

        async def inside(index: int, address: str) -> None:
            async with limit:
                argv = ["ip", "-n", self.netns(index), "-batch", "-"]
                await run_async(argv, self.attach_node_commands(address))

        await asyncio.gather(*(inside(i, a) for i, a in nodes.items()))

    async def remove(self, indexes: list[int]) -> None:
        """Everything of this hub: the nodes' links and namespaces, the rule, the table."""
        lines = [f"link del dev {self.link(i)}" for i in indexes]
        lines += [f"netns del {self.netns(i)}" for i in indexes]
        await run_async(["ip", "-force", "-batch", "-"], "\n".join(lines) + "\n", check=False)
        await self.remove_routing()

    async def remove_routing(self) -> None:
        await run_async(["ip", "-force", "-batch", "-"], self._unroute(), check=False)
        await run_async(["nft", "delete", "table", "inet", self.table], check=False)

    def _unroute(self) -> str:
        return (
            f"rule del fwmark {self.mark:#x} lookup {self.mark} priority {RULE_PRIORITY}\n"
            f"route flush table {self.mark}\n"
        )


# ---------------------------------------------------------------------- running ip and nft


def _failure(argv: list[str], stdin: str, stderr: str) -> PeerlabError:
    first = stderr.strip().splitlines()[:3]
    return PeerlabError(
        f"{' '.join(argv)} failed: {' / '.join(first) or 'no message'}",
        hint="the netns backend needs root, or a user namespace that peerlab enters for "
        "you (docs/backends.md); the commands were:\n" + stdin.strip(),
    )


async def run_async(argv: list[str], stdin: str = "", check: bool = True) -> str:
    # On a thread, as `subprocess` spawns (vfork): several times faster than the event
    # loop's child watchers when a batch of namespaces is plumbed at once.
    return await asyncio.to_thread(run, argv, stdin, check)


def run(argv: list[str], stdin: str = "", check: bool = True) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise _failure(argv, stdin, done.stderr)
    return done.stdout


# ---------------------------------------------------------------------- after a SIGKILL


def sweep(record: dict[str, Any]) -> None:
    """Remove what the hub of `record` made, found by its names: its nodes' namespaces and
    links, its rule and route table, its nft table. Plumbing of another network namespace
    than ours (a rootless run's, which ended with it) is not ours to touch."""
    if record.get("world") != world():
        return
    hub = Hub(str(record["tag"]), ipaddress.IPv4Network(record["network"]))
    links = re.compile(rf"^pl{re.escape(hub.tag)}\d+$")
    lines = []
    with contextlib.suppress(PeerlabError, ValueError):
        for item in json.loads(run(["ip", "-j", "link", "show"]) or "[]"):
            if links.match(str(item.get("ifname", ""))):
                lines.append(f"link del dev {item['ifname']}")
    prefix = f"peerlab-{hub.tag}-"
    with contextlib.suppress(OSError):
        lines += [f"netns del {name}" for name in os.listdir(NETNS_DIR) if name.startswith(prefix)]
    if lines:
        run(["ip", "-force", "-batch", "-"], "\n".join(lines) + "\n", check=False)
    run(["ip", "-force", "-batch", "-"], hub._unroute(), check=False)
    run(["nft", "delete", "table", "inet", hub.table], check=False)
