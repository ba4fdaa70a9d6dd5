"""A deterministic network of DHT protocol cores in one process, on a virtual clock.

Datagrams are delivered after `latency` virtual seconds (or dropped when the receiver is
down); every node's `advance` runs when its `next_wakeup` comes. No sockets, no sleeping:
a 1,000-second run takes as long as the work in it. Each node's wall clock is the virtual
time plus its own `skew` (the monotonic clock is the virtual time for all).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.messages import Signer
from syncpeer.core.dht.protocol import DhtConfig, DhtProtocol, Effect, Joined, LookupDone, Send
from syncpeer.core.dht.records import sign_record
from syncpeer.core.identity import Identity
from syncpeer.core.mutants import NO_MUTANTS, Mutants


@dataclass(eq=False)
class SimNode:
    name: str
    identity: Identity
    protocol: DhtProtocol
    up: bool = True
    joined_at: float | None = None
    results: dict[int, LookupResult] = field(default_factory=dict)
    wakeup: float | None = None
    skew: float = 0.0  # seconds this node's wall clock is ahead of true time

    @property
    def address(self) -> str:
        return self.protocol.me.address

    @property
    def id(self) -> int:
        return self.protocol.id


class SimNetwork:
    def __init__(self, seed: int = 1, latency: float = 0.002) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.now = 0.0
        self.nodes: dict[str, SimNode] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.delivered = 0
        # Sees every datagram as it is delivered, before its receiver handles it (a test's
        # window on what a node is told).
        self.tap: Callable[[SimNode, bytes], None] | None = None

    def random_bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def add(
        self,
        config: DhtConfig,
        bootstrap: Sequence[str] = (),
        identity: Identity | None = None,
        name: str | None = None,
        mutants: Mutants = NO_MUTANTS,
    ) -> SimNode:
        index = len(self.nodes)
        name = name or f"n{index}"
        identity = identity or Identity.generate(name, self.random_bytes)
        address = f"10.{index // 250}.{index % 250}.1:7401"
        protocol = DhtProtocol(
            Signer(identity.card.sign_key, identity.sign),
            address,
            config,
            self.random_bytes,
            record_source=lambda wall: sign_record(
                identity, address.replace(":7401", ":7400"), address, wall, config.record_ttl
            ),
            mutants=mutants,
        )
        node = SimNode(name, identity, protocol)
        self.nodes[address] = node
        self.apply(node, protocol.join(list(bootstrap), self.now, wall=self.wall(node)))
        return node

    def wall(self, node: SimNode) -> float:
        return self.now + node.skew

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def apply(self, node: SimNode, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._deliver(node, effect)
            elif isinstance(effect, LookupDone):
                node.results[effect.handle] = effect.result
            elif isinstance(effect, Joined):
                node.joined_at = self.now
        self._schedule(node)

    def _deliver(self, sender: SimNode, send: Send) -> None:
        target = self.nodes.get(send.address)
        if target is None:
            return
        source = sender.address

        def arrive() -> None:
            if target.up:
                self.delivered += 1
                if self.tap is not None:
                    self.tap(target, send.data)
                effects = target.protocol.receive(
                    send.data, source, self.now, wall=self.wall(target)
                )
                self.apply(target, effects)

        self.at(self.now + self.latency, arrive)

    def _schedule(self, node: SimNode) -> None:
        wakeup = node.protocol.next_wakeup()
        if wakeup is None or wakeup == node.wakeup:
            return
        node.wakeup = wakeup

        def fire() -> None:
            if node.wakeup == wakeup and node.up:
                node.wakeup = None
                self.apply(node, node.protocol.advance(self.now, wall=self.wall(node)))

        self.at(max(wakeup, self.now), fire)

    def run_for(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = self.now + timeout
        while self._events and not condition():
            when, _, action = self._events[0]
            if when > deadline:
                break
            heapq.heappop(self._events)
            self.now = max(self.now, when)
            action()
        if condition():
            return True
        self.now = max(self.now, deadline)
        return False

    def lookup(
        self, node: SimNode, target: int, want_value: bool = True, timeout: float = 30.0
    ) -> LookupResult:
        handle, effects = node.protocol.lookup(target, self.now, want_value=want_value)
        self.apply(node, effects)
        if not self.run_until(lambda: handle in node.results, timeout):
            raise AssertionError(f"lookup from {node.name} did not finish in {timeout}s")
        return node.results.pop(handle)

    def stop(self, node: SimNode) -> None:
        node.up = False

    def stats(self) -> dict[str, Any]:
        return {"now": self.now, "delivered": self.delivered}
