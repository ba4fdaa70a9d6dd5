"""What applies between two endpoints: the toxics on their link, the partition, who is who.

A link is named by the node that opened the connection (or sent the datagram), `src`, and
the node whose proxy received it, `dst`. A source that is known not to be a node is a
client (`None`): toxics and cuts that name a source never apply to it. A source that
cannot be told is refused (see attribution.py). `bytes` counts what was forwarded on each
link, per protocol, so a cut link can be shown to have carried nothing.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from peerlab.fabric.attempts import Attempts
from peerlab.fabric.attribution import Attributor
from peerlab.fabric.buffers import BufferPool
from peerlab.fabric.errors import Conflict, NotFound
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.spin import Spinner
from peerlab.fabric.toxics import Stub, Toxic

LinkKey = tuple[str | None, str | None, str]  # src, dst, protocol


class Cut(Protocol):
    def blocks(self, src: str, dst: str) -> bool: ...


@dataclass(eq=False)
class LinkToxic:
    """A toxic on the connections opened from `src` to `dst`; None matches any endpoint."""

    spec: ToxicSpec
    src: str | None = None
    dst: str | None = None

    def matches(self, src: str | None, dst: str | None) -> bool:
        return self.src in (None, src) and self.dst in (None, dst)


class ToxicSet:
    """Named toxics in the order they were added; tells its proxies when they change."""

    def __init__(self) -> None:
        self._items: dict[str, LinkToxic] = {}
        self._listeners: list[Callable[[], None]] = []

    def __iter__(self) -> Iterator[LinkToxic]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def get(self, name: str) -> LinkToxic:
        try:
            return self._items[name]
        except KeyError:
            raise NotFound(
                "toxic not found",
                field="name",
                hint=f"{name!r} is not one of: {', '.join(self._items) or 'none'}",
            ) from None

    def add(self, *items: LinkToxic) -> None:
        """Add toxics at the end of every chain they match, all or none."""
        names = [item.spec.name for item in items]
        for name in names:
            if name in self._items or names.count(name) > 1:
                raise Conflict(
                    "toxic already exists",
                    field="name",
                    hint=f"{name!r} is taken; give the new toxic another name",
                )
        self._items.update(zip(names, items, strict=True))
        self._changed()

    def update(self, name: str, raw: Any) -> LinkToxic:
        item = self.get(name)
        item.spec = item.spec.updated(raw)
        self._changed()
        return item

    def remove(self, *names: str) -> None:
        for name in names:
            self.get(name)
        for name in names:
            del self._items[name]
        self._changed()

    def clear(self) -> None:
        if self._items:
            self._items.clear()
            self._changed()

    def select(
        self, src: str | None, dst: str | None, stream: str, protocol: str
    ) -> list[LinkToxic]:
        """The chain of toxics for one stream of a connection from `src` to `dst`."""
        return [
            item
            for item in self._items.values()
            if item.spec.stream == stream
            and item.matches(src, dst)
            and item.spec.toxic.supports(protocol)
        ]


@dataclass(eq=False)
class Stage:
    """A toxic in the chain of one stream, with its stub on that stream."""

    item: LinkToxic
    spec: ToxicSpec  # the settings it was attached with
    stub: Stub

    @property
    def active(self) -> bool:
        return self.stub.enabled and not self.stub.removed

    @property
    def toxic(self) -> Toxic:
        return self.spec.toxic


def restage(
    stages: list[Stage], items: list[LinkToxic], new_stub: Callable[[LinkToxic], Stub]
) -> list[Stage]:
    """The chain for `items`, keeping the stubs (state, toxicity draw) of toxics already on it.

    Toxics no longer in `items` are removed from their stubs, which lets held data go on.
    """
    old = {stage.item: stage for stage in stages}
    chain = []
    for item in items:
        stage = old.pop(item, None)
        if stage is None:
            stage = Stage(item, item.spec, new_stub(item))
        elif stage.spec is item.spec:
            chain.append(stage)
            continue
        else:
            stage.stub.detach()
            stage.spec = item.spec
        if stage.stub.enabled:
            stage.toxic.attach(stage.stub)
        chain.append(stage)
    for stage in old.values():
        stage.stub.remove()
    return chain


class Links:
    """What the proxies of one fabric (or one standalone proxy) consult about links."""

    def __init__(self, seed: int, attributor: Attributor | None = None) -> None:
        self.seed = seed
        self.toxics = ToxicSet()
        self.cut: Cut | None = None
        self.attributor = attributor or Attributor()
        self._public_ip: dict[str, str] = {}
        # Bytes forwarded per link: [src -> dst, dst -> src]; UDP adds each datagram, TCP
        # each connection when it closes (open ones are summed by whoever reads this).
        self.bytes: dict[LinkKey, list[int]] = {}
        # UDP: a node's datagrams leave from its own public socket (see udp.py)
        self.public_sockets: dict[tuple[str, int], socket.socket] = {}
        self.buffers = BufferPool()  # the proxies sharing these links share one loop
        self.spinner = Spinner()  # ... which polls on a moment after forwarding
        self.attempts = Attempts()  # when each link was tried (the fabric sets its clock)

    def add_node(self, node: str, public_ip: str, bind_ip: str) -> None:
        self._public_ip[node] = public_ip
        self.attributor.add_node(node, public_ip, bind_ip)

    def add_own_address(self, node: str, ip: str) -> None:
        """`node` has an address of its own (in a network namespace): it is reached there,
        and whatever comes from there is its."""
        self._public_ip[node] = ip
        self.attributor.add_own_address(node, ip)

    def public_ip(self, node: str | None) -> str | None:
        return self._public_ip.get(node) if node is not None else None

    def blocked(self, src: str | None, dst: str | None) -> bool:
        """Whether the partition stops `src` from reaching `dst` (clients are never cut)."""
        if self.cut is None or src is None or dst is None or src == dst:
            return False
        return self.cut.blocks(src, dst)

    def count(self, key: LinkKey, up: int, down: int) -> None:
        totals = self.bytes.get(key)
        if totals is None:
            totals = self.bytes[key] = [0, 0]
        totals[0] += up
        totals[1] += down
