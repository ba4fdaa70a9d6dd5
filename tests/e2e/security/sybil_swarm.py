"""A Sybil attacker for syncpeer's DHT: many ids, one process, all placed near a target.

Each Sybil is a real DHT endpoint (its own UDP socket and Ed25519 key) that answers pings
so it looks alive, answers every FIND_NODE / FIND_VALUE with the Sybils nearest to the
asked id (never an honest node, never a record), accepts STOREs and drops them, and keeps
announcing itself to the honest nodes so it fills their buckets around the target before
the target arrives. Where the ids come from is the attacker's budget: `grind` makes keys and
keeps those nearest to the target that the honest nodes would accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncpeer.core.dht.ids import node_id_of
from syncpeer.core.dht.messages import Contact, InvalidMessage, Message, Signer, decode, encode
from syncpeer.core.dht.puzzle import satisfies, sign_key_of
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.keyring import parse_address

ANNOUNCE_EVERY = 1.0


@dataclass(frozen=True)
class Key:
    sign_private: bytes
    id: int

    @classmethod
    def make(cls, random: RandomSource) -> Key:
        sign_private = random(32)
        return cls(sign_private, node_id_of(sign_key_of(sign_private)))


def grind(
    target: int, budget: int, count: int, puzzle_bits: int, random: RandomSource
) -> list[Key]:
    """Make `budget` keys; keep the `count` nearest to `target` whose ids pass the puzzle."""
    made = [Key.make(random) for _ in range(budget)]
    usable = [key for key in made if satisfies(key.id, puzzle_bits)]
    usable.sort(key=lambda key: key.id ^ target)
    return usable[:count]


class Sybil:
    def __init__(self, key: Key, address: tuple[str, int], random: RandomSource) -> None:
        self.identity = Identity("sybil", key.sign_private, random(32))
        self.signer = Signer(self.identity.card.sign_key, self.identity.sign)
        self.address = address
        self.contact = Contact(self.signer.id, f"{address[0]}:{address[1]}")
        self.socket: socket.socket | None = None


class SybilSwarm:
    """Runs the Sybils on a loop of their own, in a thread; `with swarm: ...` or start/stop."""

    def __init__(
        self,
        keys: Sequence[Key],
        addresses: Sequence[tuple[str, int]],
        honest: Callable[[], list[str]],
        random: RandomSource,
        k: int = 20,
    ) -> None:
        self.sybils = [Sybil(key, addr, random) for key, addr in zip(keys, addresses, strict=False)]
        self.honest = honest
        self.random = random
        self.k = k
        self.answered = 0
        self.dropped_stores = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="sybils", daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> SybilSwarm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for sybil in self.sybils:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(sybil.address)
            sock.setblocking(False)
            sybil.socket = sock
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for sybil in self.sybils:
            if sybil.socket is not None:
                sybil.socket.close()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        for sybil in self.sybils:
            assert sybil.socket is not None
            self._loop.add_reader(sybil.socket.fileno(), self._readable, sybil)
        self._loop.run_until_complete(self._announce())
        for sybil in self.sybils:
            if sybil.socket is not None:
                self._loop.remove_reader(sybil.socket.fileno())
        self._loop.close()

    async def _announce(self) -> None:
        """Ping every honest node from every Sybil, again and again: they stay fresh (a
        full bucket keeps contacts that answer) and are there before the target."""
        while not self._stop.is_set():
            for address in self.honest():
                host, port = parse_address(address)
                for sybil in self.sybils:
                    message = Message("ping", self.random(8).hex(), sybil.contact)
                    self._send(sybil, encode(message, sybil.signer), (host, port))
            await asyncio.sleep(ANNOUNCE_EVERY)

    def _send(self, sybil: Sybil, data: bytes, to: tuple[str, int]) -> None:
        if sybil.socket is not None:
            with contextlib.suppress(OSError):
                sybil.socket.sendto(data, to)

    def _readable(self, sybil: Sybil) -> None:
        assert sybil.socket is not None
        while True:
            try:
                data, source = sybil.socket.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            try:
                request, _ = decode(data)
            except InvalidMessage:
                continue
            if not request.is_request:
                continue
            self.answered += 1
            if request.type == "ping":
                answer = Message("pong", request.rpc, sybil.contact)
            elif request.type == "store":
                self.dropped_stores += 1
                answer = Message("stored", request.rpc, sybil.contact, ok=True)
            else:
                assert request.target is not None
                target = request.target
                nearest = sorted(
                    (s.contact for s in self.sybils if s is not sybil),
                    key=lambda contact: contact.id ^ target,
                )[: self.k]
                answer = Message("nodes", request.rpc, sybil.contact, nodes=tuple(nearest))
            self._send(sybil, encode(answer, sybil.signer), source)
