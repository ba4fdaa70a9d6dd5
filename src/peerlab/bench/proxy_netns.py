"""`peerlab bench proxy --backend netns`: the fabric's transparent interception between two
network namespaces, against the direct path between the same two namespaces, in one run.

Two nodes' namespaces are plumbed as the netns backend does (`backends.plumbing`), their
traffic diverted by `tproxy` into a fabric's transparent listeners on this process's loop.
A second veth pair links the two namespaces directly, with an address of its own at each
end: the direct path is one veth hop, the intercepted one a veth into the host, the fabric
in userspace and a veth out. The sink and echo server run in B's namespace, the sender and
pinger in A's (`bench.traffic`, measured as `bench proxy` does: one bulk stream, median of
`repeats`; ping-pong of 32-byte messages in alternating rounds). Keys as `bench proxy`'s,
`direct` being the direct namespace-to-namespace path, `proxy` the path through tproxy and
the fabric.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from peerlab import backends
from peerlab.addresses import NetworkBlock
from peerlab.aio import LoopThread
from peerlab.backends.plumbing import Hub, run_async
from peerlab.bench.traffic import Route, Traffic, check_amounts, compare
from peerlab.fabric import Fabric
from peerlab.reaper import Reaper


def run(megabytes: int = 1024, pings: int = 5000, repeats: int = 5) -> dict[str, Any]:
    check_amounts(megabytes, pings, repeats)
    backends.enter("netns")  # without root: a user namespace, before the loop's thread
    amount = megabytes * 2**20
    reaper = Reaper(f"bench-proxy-netns-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    block = NetworkBlock.lease()
    reaper.add_callback("address lease", block.release)
    hub = Hub(uuid.uuid4().hex[:6], block.network)
    reaper.add_resource("network", "network", hub.record())
    loop = LoopThread("bench-proxy-netns")
    fabric = Fabric(1, None, lambda requests: [None] * len(requests))  # sources are exact
    reaper.add_callback("loop", loop.close)
    reaper.add_callback("fabric", lambda: loop.run(fabric.close(), 15))
    a, b = block.node(0), block.node(1)
    a_direct, b_direct = block.node(2), block.node(3)  # the direct pair's own ends
    bench = None
    try:
        loop.run(_plumb(hub, fabric, a, b, a_direct, b_direct), 60)
        bench = Traffic(
            servers_in=("ip", "netns", "exec", hub.netns(1)),
            clients_in=("ip", "netns", "exec", hub.netns(0)),
            bind="0.0.0.0",
            host=b,
        )
        figures = compare(
            bench,
            Route(b_direct, bench.sink_port, bench.echo_port),
            Route(b, bench.sink_port, bench.echo_port),
            amount,
            pings,
            repeats,
        )
        connections = sum(
            proxy.stats().get("accepted", 0) for proxy in fabric.proxies.values()
        )  # every intercepted connection crossed the fabric
    finally:
        if bench is not None:
            bench.close()
        loop.run(hub.remove([0, 1]), 30)
        reaper.forget_resource("network")
        reaper.close()

    return {
        "backend": "netns",
        "direct": "namespace to namespace over one veth pair",
        "proxy": "tproxy into the fabric on the host and out again",
        **figures,
        "intercepted_connections": connections,
        "megabytes": megabytes,
        "repeats": repeats,
        "pings": pings,
        "loop": type(loop.loop).__module__.split(".")[0],
        "cpus": os.cpu_count(),
    }


async def _plumb(hub: Hub, fabric: Fabric, a: str, b: str, a_direct: str, b_direct: str) -> None:
    tcp, udp = await fabric.divert(hub.host)
    await hub.create(tcp, udp)
    await hub.attach({0: a, 1: b})
    for name, address in (("A", a), ("B", b)):
        await fabric.intercept(name, address, {})
    # The direct pair: an address at each end, and a route to the other end through it.
    await run_async(
        ["ip", "-batch", "-"],
        f"link add name {hub.link(0)}x netns {hub.netns(0)} type veth "
        f"peer name {hub.link(1)}x netns {hub.netns(1)}\n",
    )
    for index, here, there in ((0, a_direct, b_direct), (1, b_direct, a_direct)):
        await run_async(
            ["ip", "-n", hub.netns(index), "-batch", "-"],
            f"addr add {here}/32 dev {hub.link(index)}x\n"
            f"link set dev {hub.link(index)}x up\n"
            f"route add {there}/32 dev {hub.link(index)}x src {here}\n",
        )
