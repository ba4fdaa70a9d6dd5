"""The simulator's fault plane: `env.net` on simulated links, with the fabric's meaning.

It is the fabric (`peerlab.fabric.fabric.Fabric`) without proxies: the same fault values
applied, replaced, removed and recorded in the history the same way, in the same `Links`
(toxics and the partition's cut) that the simulated network consults for every message. What
differs is where faults act and on what time: a partition resets the simulated exchanges it
blocks, a transient one heals and a rolling one steps on virtual time, `reset` breaks
simulated exchanges, and `show` counts what crossed each link.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

from peerlab.clock import Cancellable
from peerlab.fabric.fabric import Fabric
from peerlab.fabric.faults import Partition, RollingPartition
from peerlab.history import History
from peerlab.sim.loop import Timer
from peerlab.sim.world import World

# Up to this many nodes, each change of the partition records what crossed the links it cuts
# (the fault fidelity checker's samples, as the fabric does). A sample lists every cut pair:
# on thousands of nodes that costs more than the run, and the simulated network enforces the
# very cut the checker would compare with.
SAMPLED_NODES = 64


class _Rolling:
    """A rolling partition on virtual time: the timer of its next step."""

    def __init__(self) -> None:
        self.timer: Timer | None = None

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class SimPlane(Fabric):
    """Faults on the links of a simulated world."""

    def __init__(self, world: World, history: History | None) -> None:
        super().__init__(world.seed, history, None)
        self.world = world
        self.network = world.network
        self.links = world.network.links

    async def expose(
        self,
        node: str,
        port_name: str,
        protocol: Literal["tcp", "udp"],
        listen: tuple[str, int],
        upstream: tuple[str, int],
    ) -> None:
        if node not in self._nodes:  # no proxy: the simulated network carries the traffic
            self._nodes.append(node)

    async def unexpose(self, node: str) -> None:
        if node in self._nodes:
            self._nodes.remove(node)

    async def close(self) -> None:
        self._stop_partition()

    def reset(self, src: str | None, dst: str | None) -> int:
        return self.network.reset(src, dst)

    def show(self) -> dict[str, Any]:
        counters = [
            {"src": src, "dst": dst, **counters.to_json()}
            for (src, dst), counters in sorted(self.network.counters.items())
        ]
        return {**super().show(), "counters": counters}

    def _cut(self, partition: Partition | None) -> None:
        self.links.cut = partition
        if partition is not None:
            self.network.cut_blocked()
        if len(self._nodes) <= SAMPLED_NODES:
            self.sample()

    def _later(self, delay: float, callback: Callable[..., None], *args: Any) -> Cancellable:
        return self.world.loop.call_later(delay, callback, *args)

    def _start_rolling(self, rolling: RollingPartition) -> Cancellable:
        handle = _Rolling()
        order = self._roll_order(rolling)
        steps = itertools.count()

        def step() -> None:
            self._roll_step(rolling, order, next(steps))
            handle.timer = self.world.loop.call_later(rolling.period, step)

        step()
        return handle
