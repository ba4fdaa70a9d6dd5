"""A deterministic network of syncpeer cores (identity, store, sync engine) in one process, on
a virtual clock: what `syncpeer.io` does over HTTP, done with direct calls.

Each poll is answered after `latency` virtual seconds with the friend's current listing,
each download with the envelope bytes (or a 412-like failure when the version moved on).
Every node's wall clock is the virtual time plus its `skew`; every key, nonce and trace id
comes from the run's seed, and `trace` hashes every action of every core in order.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from syncpeer.core import envelope
from syncpeer.core.identity import Identity
from syncpeer.core.listing import ListingEntry
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.store import Store, StoredFile
from syncpeer.core.sync import SyncConfig, SyncEngine
from syncpeer.core.sync_events import (
    Action,
    DiscardPartial,
    Download,
    DownloadEnded,
    DownloadFailed,
    Event,
    FriendAdded,
    Keep,
    ListingReceived,
    Poll,
    Tick,
)


@dataclass(eq=False)
class SimPeer:
    name: str
    identity: Identity
    store: Store
    engine: SyncEngine
    random: Random
    skew: float = 0.0
    envelopes: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes held
    wakeup: float | None = None

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def address(self) -> str:
        return f"{self.name}:7400"


class SyncSim:
    def __init__(self, seed: int, latency: float = 0.01, poll_interval: float = 1.0) -> None:
        self.seed = seed
        self.latency = latency
        self.poll_interval = poll_interval
        self.now = 0.0
        self.peers: dict[str, SimPeer] = {}
        self.trace = hashlib.sha256()  # every action of every core, in order
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def add(self, name: str, mutants: Mutants = NO_MUTANTS) -> SimPeer:
        random = Random(f"{self.seed}/{name}")
        identity = Identity.generate(name, random.randbytes)
        store = Store(wall=self.now, mutants=mutants)
        config = SyncConfig(poll_interval=self.poll_interval, http_timeout=5.0)
        engine = SyncEngine(
            identity.fingerprint, store, random=random, config=config, mutants=mutants
        )
        peer = SimPeer(name, identity, store, engine, random)
        self.peers[peer.address] = peer
        self.feed(peer, Tick())
        return peer

    def befriend(self, peer: SimPeer, *friends: SimPeer) -> None:
        for friend in friends:
            self.feed(peer, FriendAdded(friend.fingerprint, friend.address))

    def publish(self, peer: SimPeer, name: str, content: bytes) -> StoredFile:
        data = envelope.seal(
            peer.identity,
            name=name,
            version=peer.store.next_version(name),
            timestamp=self.now + peer.skew,
            plaintext=content,
            recipients=None,
            random=peer.random.randbytes,
        )
        file = StoredFile.from_envelope(envelope.verify(data), len(data), _sha(data))
        peer.envelopes[file.sha256] = data
        peer.store.commit(peer.store.decide(file), wall=self.now + peer.skew)
        return file

    # ------------------------------------------------------------------ the event loop

    def feed(self, peer: SimPeer, event: Event) -> None:
        for action in peer.engine.handle(event, self.now):
            self.trace.update(repr((self.now, peer.name, action)).encode())
            self._perform(peer, action)
        wakeup = peer.engine.next_wakeup()
        if wakeup is not None and wakeup != peer.wakeup:
            peer.wakeup = wakeup
            self._at(wakeup, lambda: self._tick(peer, wakeup))

    def _tick(self, peer: SimPeer, wakeup: float) -> None:
        if peer.wakeup == wakeup:
            peer.wakeup = None
            self.feed(peer, Tick())

    def _perform(self, peer: SimPeer, action: Action) -> None:
        if isinstance(action, Poll):
            friend = self.peers[action.address]
            listing = tuple(
                ListingEntry.from_json(file.listing_json()) for file in friend.store.files()
            )
            answer = ListingReceived(action, listing, None)
            self._at(self.now + self.latency, lambda: self.feed(peer, answer))
        elif isinstance(action, Download):
            self._at(self.now + self.latency, lambda: self._serve(peer, action))
        elif isinstance(action, Keep):
            data = peer.envelopes.pop(f"partial/{action.sha256}")
            peer.envelopes[action.sha256] = data
            peer.store.commit(action.decision, wall=self.now + peer.skew)
        elif isinstance(action, DiscardPartial):
            peer.envelopes.pop(f"partial/{action.sha256}", None)
        elif isinstance(action, LogEvent):
            pass  # the trace holds it

    def _serve(self, peer: SimPeer, download: Download) -> None:
        friend = self.peers[download.address]
        current = friend.store.current(download.entry.name)
        if current is None or current.sha256 != download.entry.sha256:
            self.feed(peer, DownloadFailed(download, download.offset, "412 version moved on"))
            return
        data = friend.envelopes[current.sha256]
        peer.envelopes[f"partial/{current.sha256}"] = data
        self.feed(peer, DownloadEnded(download, len(data) - download.offset, data))

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def run_for(self, seconds: float) -> None:
        deadline = self.now + seconds
        while self._events and self._events[0][0] <= deadline:
            when, _, action = heapq.heappop(self._events)
            self.now = max(self.now, when)
            action()
        self.now = deadline


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scenario(seed: int) -> str:
    """Five cores in a ring with chords, edits, concurrent edits and a skewed clock; the
    digest of every action taken and of what each node ends up holding."""
    sim = SyncSim(seed)
    peers = [sim.add(name) for name in "ABCDE"]
    peers[3].skew = 3600.0
    for index, peer in enumerate(peers):
        sim.befriend(peer, peers[(index + 1) % 5], peers[(index + 2) % 5])
    rng = Random(seed)
    for step in range(12):
        author = rng.choice(peers)
        sim.publish(author, f"f{rng.randrange(4)}.txt", f"edit {step}".encode())
        sim.run_for(rng.uniform(0.0, 1.5))
    sim.run_for(10.0)
    for peer in peers:
        held = [(f.name, f.sha256) for f in peer.store.files()]
        sim.trace.update(repr((peer.name, held)).encode())
    return sim.trace.hexdigest()
