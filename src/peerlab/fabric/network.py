"""`env.net`: the synchronous face of the fault plane, for tests, the nemesis and the CLI.

Every method runs on the environment's loop with a deadline, checks node names first, and
returns JSON (the `@rpc` methods are what `peerlab net ...` calls). Faults come back as
handles: the fault's JSON form that can also `remove()` it, or remove it on leaving a
`with` block.

    with env.net.partition([["A", "B"], ["C"]]):
        ...                                   # healed on exit
    with env.net.link("A", "B") as link:
        link.add(Latency(latency=500, jitter=100))
        ...                                   # removed on exit
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from peerlab.errors import UsageError
from peerlab.fabric.errors import NotFound
from peerlab.fabric.faults import (
    Fault,
    LinkFault,
    Partition,
    RollingPartition,
    ToxicFault,
    fault_from_dict,
)
from peerlab.fabric.plane import FaultPlane
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.toxics import Bandwidth, Latency, Loss, Toxic
from peerlab.rpc import rpc

CALL_TIMEOUT = 10.0  # seconds for any control call; the data plane never blocks one


async def _on_loop(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


class FaultHandle(dict[str, Any]):
    """An applied fault: its JSON form, plus `remove()`; removed on leaving a `with` block."""

    def __init__(self, network: Network, fault: dict[str, Any]) -> None:
        super().__init__(fault)
        self._network = network

    @property
    def name(self) -> str:
        return str(self["name"])

    def remove(self) -> None:
        """Remove the fault; NotFound if it is gone (healed, replaced or removed)."""
        self._network._remove(self.name, dict(self))

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(NotFound):  # a transient partition may have healed itself
            self.remove()


class Link:
    """The data flowing from `src` to `dst` (None: any node); a `with` block removes its faults."""

    def __init__(self, network: Network, src: str | None, dst: str | None) -> None:
        self._network = network
        self.src, self.dst = src, dst
        self._added: list[FaultHandle] = []

    def add(self, toxic: Toxic, *, toxicity: float = 1.0, name: str = "") -> FaultHandle:
        """Apply `toxic` to this link (replacing a toxic of the same type on it)."""
        handle = self._network.apply(LinkFault(toxic, self.src, self.dst, toxicity, name))
        self._added.append(handle)
        return handle

    def remove(self, fault: FaultHandle | str) -> None:
        self._network.remove(fault if isinstance(fault, str) else fault.name)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in reversed(self._added):
            with contextlib.suppress(NotFound):
                handle.remove()
        self._added.clear()


class Network:
    """The fault plane of a live environment, driven synchronously (`env.net`)."""

    def __init__(
        self,
        plane: FaultPlane,
        run: Callable[[Coroutine[Any, Any, Any], float], Any],
        nodes: Callable[[], list[str]],
    ) -> None:
        self.plane = plane
        self._run = run
        self._nodes = nodes

    @property
    def enabled(self) -> bool:
        """Whether faults can be applied (False when the network runs without a fabric)."""
        return self.plane.enabled

    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        return self._run(_on_loop(func, *args), CALL_TIMEOUT)

    def _check(self, *names: str | None) -> None:
        known = self._nodes()
        for name in names:
            if name is not None and name not in known:
                raise UsageError(
                    f"unknown node {name!r}",
                    field="node",
                    hint=f"nodes are: {', '.join(known) or 'none yet'}",
                )

    # ------------------------------------------------------------------ faults as values

    @rpc
    def apply(self, fault: Fault | dict[str, Any]) -> FaultHandle:
        """Apply a fault value (or its JSON form); returns its handle."""
        value = fault_from_dict(fault) if isinstance(fault, dict) else fault
        if isinstance(value, RollingPartition) and not value.nodes:
            value = RollingPartition(value.period, self._nodes())
        self._check(*value.mentions())
        applied = self._call(self.plane.apply, value)
        return FaultHandle(self, applied.to_dict())

    @rpc
    def remove(self, name: str) -> None:
        """Remove the applied fault `name` (a toxic, a link fault or the partition)."""
        self._remove(name, None)

    def _remove(self, name: str, expected: dict[str, Any] | None) -> None:
        self._call(self.plane.remove, name, expected)

    @rpc
    def faults(self) -> list[dict[str, Any]]:
        """The applied faults, oldest first, in their JSON form."""
        return self.export()

    def export(self) -> list[dict[str, Any]]:
        return list(self._call(self.plane.export))

    def restore(self, faults: list[dict[str, Any]]) -> None:
        """Apply faults exported by another Environment (adopting its nodes)."""
        for fault in faults:
            self.apply(fault)

    def link(self, src: str | None, dst: str | None) -> Link:
        self._check(src, dst)
        return Link(self, src, dst)

    # ------------------------------------------------------------------ the CLI's verbs

    @rpc
    def show(self) -> dict[str, Any]:
        """Faults, the partition and what it cuts, and each proxy's connections and bytes."""
        return dict(self._call(self.plane.show))

    @rpc
    def attempts(self, src: str | None = None, dst: str | None = None) -> list[dict[str, Any]]:
        """When each directed link was tried, `{"src", "dst", "protocol", "times"}`: TCP
        connections and datagrams arriving for `dst`, in seconds on the history's clock
        (an entry's `time` / 1e9), whether the link then carried them or not."""
        self._check(src, dst)
        return list(self._call(self.plane.attempts, src, dst))

    @rpc
    def links(self) -> dict[str, Any]:
        """Every directed link src -> dst (connections src opened to dst's proxy): open
        connections and how their source was told (address, owner, client), bytes each way,
        whether the partition cuts it, and its faults; plus the connections refused because
        their source could not be told, and owner lookup times."""
        return dict(self._call(self.plane.links_view))

    def sample(self) -> None:
        """Record the bytes forwarded on the cut links now (the end of a run does)."""
        self._call(self.plane.sample)

    @rpc
    def partition(
        self, groups: list[list[str]], one_way: bool = False, duration_s: float | None = None
    ) -> FaultHandle:
        """Cut the network into `groups` (see `Partition`); replaces any partition."""
        return self.apply(Partition(groups, one_way, duration_s))

    @rpc
    def rolling(self, period_s: float, nodes: list[str] | None = None) -> FaultHandle:
        """Cut off one node after another, each for `period_s` seconds, in a seeded order."""
        return self.apply(RollingPartition(period_s, nodes or []))

    @rpc
    def heal(self) -> None:
        """Remove the partition, if any."""
        self._call(self.plane.heal)

    @rpc
    def latency(
        self,
        latency_ms: float,
        jitter_ms: float = 0,
        src: str | None = None,
        dst: str | None = None,
    ) -> FaultHandle:
        """Delay data from `src` to `dst` (None: any node) by latency +/- jitter, one way."""
        return self.apply(LinkFault(Latency(latency=latency_ms, jitter=jitter_ms), src, dst))

    @rpc
    def limit(
        self, rate_kb_s: float, src: str | None = None, dst: str | None = None
    ) -> FaultHandle:
        """Cap the bandwidth from `src` to `dst` at `rate_kb_s` KB/s (1 KB = 1000 bytes)."""
        return self.apply(LinkFault(Bandwidth(rate=rate_kb_s), src, dst))

    @rpc
    def loss(self, percent: float, src: str | None = None, dst: str | None = None) -> FaultHandle:
        """Lose `percent` % of packets from `src` to `dst` (TCP: retransmission stalls)."""
        return self.apply(LinkFault(Loss(percent=percent), src, dst))

    @rpc
    def reset(self, src: str | None = None, dst: str | None = None) -> int:
        """Reset the open TCP connections between `src` and `dst`; how many were reset."""
        self._check(src, dst)
        return int(self._call(self.plane.reset, src, dst))

    @rpc
    def clear(self) -> None:
        """Remove every fault and heal the partition."""
        self._call(self.plane.clear)

    @rpc
    def add_toxic(self, src: str | None, dst: str | None, toxic: dict[str, Any]) -> str:
        """Add a Toxiproxy toxic (its JSON form) to the connections `src` opens to `dst`."""
        return self.apply(ToxicFault(ToxicSpec.from_dict(toxic), src, dst)).name

    @rpc
    def remove_toxic(self, name: str) -> None:
        """Remove a toxic added with `add_toxic` (any fault's name works)."""
        self.remove(name)
