"""SimPeer: one syncpeer node on peerlab's simulator, wired as `syncpeer.io.node.Node` wires a
real one: identity and keyring on its disk, the store, the sync engine and its driver, the
DHT, the HTTP API, the lying modes and the deliberate bugs.

It reads `syncpeer run`'s own arguments (the manifest's, rendered for the node) and the
same environment variables (`SYNCPEER_MUTANTS`, `SYNCPEER_BYZANTINE`). Keys, nonces and
trace ids come from the host's seeded generator; every timestamp from the node's wall clock.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from syncpeer.core import envelope
from syncpeer.core.byzantine import MODES, VARIABLE, Liar, mode_of
from syncpeer.core.dht.ids import node_id_of
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.puzzle import satisfies, solve
from syncpeer.core.discovery import (
    DiscoveryError,
    address_of,
    friend_from_card,
    target_of,
    unanswered,
)
from syncpeer.core.errors import InvalidEnvelope, NotARecipient, UnknownFriend
from syncpeer.core.identity import Identity
from syncpeer.core.keyring import Friend, Keyring, friend_event
from syncpeer.core.mutants import Mutants
from syncpeer.core.names import validate_name
from syncpeer.core.publishing import seal_next, sealed_event, stored
from syncpeer.core.store import StoredFile
from syncpeer.core.sync import SyncConfig, SyncEngine
from syncpeer.core.sync_events import FriendAdded, FriendRemoved
from syncpeer.io.config import MUTANTS_VARIABLE, NodeConfig, parse_run_args
from syncpeer.io.logs import EventRing
from syncpeer.sim.api import SimApi
from syncpeer.sim.dht import SimDht
from syncpeer.sim.files import SimFiles
from syncpeer.sim.host import Host
from syncpeer.sim.log import SimLog
from syncpeer.sim.sync import SimSyncer

IDENTITY = "identity.json"
FRIENDS = "friends.json"
REBROADCAST_DELAY = 0.1  # how often the `rebroadcast` mutant's folder watcher looks


def _config(host: Host) -> NodeConfig:
    """`syncpeer run`'s arguments and the mutants named in the node's environment."""
    try:
        config = parse_run_args(list(host.args))
        mutants = Mutants.parse(host.env.get(MUTANTS_VARIABLE))
    except SystemExit:
        raise ValueError(f"bad syncpeer arguments: {' '.join(host.args)}") from None
    return dataclasses.replace(config, mutants=mutants)


class SimPeer:
    """One syncpeer node on a simulated host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.config = config = _config(host)
        self.mutants = config.mutants
        self.versions = config.versions
        self.random = host.random.randbytes
        self.mode = mode_of(host.env.get(VARIABLE))
        self.events = EventRing()
        self.log = SimLog(
            host, config.log_level, self.events, {"node": config.name, "component": "node"}
        ).bind(trace_id=None)
        self.identity = self._identity(config)
        self.keyring = self._keyring()
        self.files = SimFiles(host.disk, host.wall, self.mutants)
        self.engine = SyncEngine(
            self.fingerprint,
            self.files.model,
            random=Random(self.random(32)),
            config=SyncConfig(
                poll_interval=config.poll_interval,
                http_timeout=config.http_timeout,
                max_backoff=config.max_backoff,
                stall_timeout=config.stall_timeout,
            ),
            mutants=self.mutants,
            partials=self.files.partials(),
        )
        self.counters = self.engine.counters
        on_completed = self._rebroadcast if "rebroadcast" in self.mutants else None
        self.syncer = SimSyncer(
            host, self.engine, self.files, self.log, self.mutants, self.versions, on_completed
        )
        for friend in self.keyring:
            self.syncer.feed(FriendAdded(friend.fingerprint, friend.address))
        self.instance = self.random(4).hex()
        self.liar: Liar | None = None
        self.dht: SimDht | None = None
        self.api = SimApi(self)

    # ------------------------------------------------------------------ state on disk

    def _identity(self, config: NodeConfig) -> Identity:
        """The stored identity, created on first start (passing the DHT's puzzle, if any)
        and renamed to `--name`, as `syncpeer.io.datadir` keeps it."""
        raw = self.host.disk.read(IDENTITY)
        bits = config.dht.puzzle_bits if config.udp_port is not None else 0
        if raw is None:
            identity = solve(config.name, self.random, bits, simulated=True)
            self._save(IDENTITY, identity.to_json())
            self.log.info(
                "identity_created", trace_id=self.new_trace_id(), fingerprint=identity.fingerprint
            )
            return identity
        identity = Identity.from_json(json.loads(raw), simulated=True)
        if not satisfies(node_id_of(identity.card.sign_key), bits):
            raise ValueError(
                f"identity {identity.fingerprint} does not solve the {bits}-bit puzzle "
                "(--puzzle-bits); start with a new data dir"
            )
        if identity.name != config.name:
            identity = identity.renamed(config.name)
            self._save(IDENTITY, identity.to_json())
        return identity

    def _keyring(self) -> Keyring:
        raw = self.host.disk.read(FRIENDS)
        if raw is None:
            return Keyring(self.fingerprint)
        return Keyring.from_json(self.fingerprint, json.loads(raw))

    def _save(self, path: str, value: Any) -> None:
        # As syncpeer.io.datadir: written whole and synced, so a crash keeps one or the other
        # (compact: nobody reads a simulated disk by eye, and indenting is Python's slow path).
        self.host.disk.write(path, json.dumps(value).encode(), sync=True)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def address(self) -> str:
        config = self.config
        return config.advertise or f"{config.host}:{config.port}"

    def new_trace_id(self) -> str:
        return self.random(8).hex()

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        for path, reason in self.files.load():
            self.log.warning("file_ignored", component="store", path=path, reason=reason)
        if self.mutants:
            self.log.warning("mutants_enabled", mutants=list(self.mutants))
        if self.mode is not None:
            self.log.warning("byzantine_mode", mode=self.mode, behaviour=MODES[self.mode])
            self.liar = Liar(self.mode, self.files.model, self.files.read)
        self.host.serve_http(self.config.port, self.api.handle)
        self.syncer.start()
        if self.config.udp_port is not None:
            self._start_dht()
        # The leak-private-key mutant: the whole identity logged, as syncpeer.io.node does.
        leaked = {"identity": self.identity.to_json()} if "leak-private-key" in self.mutants else {}
        self.log.info(
            "node_started",
            **leaked,
            trace_id=self.new_trace_id(),
            fingerprint=self.fingerprint,
            address=self.address,
            host=self.config.host,
            port=self.config.port,
            source_address=self.config.source_address,
            friends=len(self.keyring),
            files=len(self.files.model.files()),
            protocols=list(self.versions.speaks),
        )

    def _start_dht(self) -> None:
        config = self.config
        port = config.udp_port or 0
        advertise = config.dht_advertise
        if advertise is None and config.advertise:
            advertise = f"{config.advertise.rpartition(':')[0]}:{port}"
        self.dht = SimDht(
            self.host,
            self.identity,
            config.dht,
            port=port,
            address=advertise or f"{config.host}:{port}",
            http_address=self.address,
            bootstrap=config.bootstrap,
            log=self.log,
            mutants=self.mutants,
        )
        self.dht.start()

    def stop(self) -> None:
        self.log.info("node_stopping")
        self.log.info("node_stopped")

    # ------------------------------------------------------------------ friends

    def add_friend(self, friend: Friend) -> bool:
        added = self.keyring.add(friend)
        self._save(FRIENDS, self.keyring.to_json())
        self.syncer.feed(FriendAdded(friend.fingerprint, friend.address))
        event = friend_event(friend, added, self.new_trace_id())
        self.log.info(event.event, **event.fields)
        return added

    def remove_friend(self, fingerprint: str) -> Friend:
        friend = self.keyring.remove(fingerprint)
        self._save(FRIENDS, self.keyring.to_json())
        self.syncer.feed(FriendRemoved(fingerprint))
        self.log.info("friend_removed", trace_id=self.new_trace_id(), friend=fingerprint)
        return friend

    def discover_friend(
        self,
        fingerprint: object,
        done: Callable[[Friend | DiscoveryError, LookupResult | None], None],
    ) -> None:
        """Resolve `fingerprint` through the DHT into a verified friend (not yet added)."""
        if self.dht is None:
            done(DiscoveryError(409, "this node runs no DHT (start it with --udp-port)"), None)
            return
        try:
            target = target_of(fingerprint)
        except DiscoveryError as error:
            done(error, None)
            return

        def found(result: LookupResult) -> None:
            try:
                address = address_of(fingerprint, result)
            except DiscoveryError as error:
                done(error, result)
                return
            _CardFetch(self, fingerprint, address, result, done).send()

        self.dht.lookup(target, found)

    # ------------------------------------------------------------------ files

    def seal(
        self, name: str, content: bytes | None, recipients: Sequence[str] | None
    ) -> StoredFile:
        """Seal and store, durably, the next version of `name` (None content: its
        tombstone)."""
        cards = None if recipients is None else self.keyring.cards_for(recipients)
        trace_id = self.new_trace_id()
        data = seal_next(
            self.identity,
            self.files.model,
            name,
            content=content,
            recipients=cards,
            timestamp=self.host.wall(),
            random=self.random,
            trace_id=trace_id,
        )
        file = stored(data, self.mutants)
        decision = self.files.model.decide(file)
        self.files.accept_bytes(decision, data)
        event = sealed_event(file, decision, trace_id)
        getattr(self.log, event.level)(event.event, **event.fields)
        return file

    def publish(self, name: object, content: bytes, recipients: Sequence[str] | None) -> StoredFile:
        """Seal `content` as the next version of `name` for `recipients` (None: public)."""
        return self.seal(validate_name(name), content, recipients)

    def plaintext(self, name: str) -> bytes:
        """Decrypt the current version of `name` (KeyError: not held; NotARecipient)."""
        found = self.files.read_current(name)
        if found is None:
            raise KeyError(name)
        return envelope.decrypt(envelope.verify(found[1], self.mutants), self.identity)

    # ------------------------------------------------------------------ lies and bugs

    def equivocate(self, name: str) -> None:
        """In `selective` mode, sign a second envelope of the version just published."""
        if self.liar is None:
            return
        event = self.liar.equivocate(self.identity, self.keyring, name, self.plaintext, self.random)
        if event is not None:
            getattr(self.log, event.level)(event.event, **event.fields)

    def _rebroadcast(self, fields: dict[str, Any]) -> None:
        """The `rebroadcast` mutant: the folder watcher sees the syncer's write a moment
        later and publishes it again as this node's own edit."""
        if not fields.get("deleted"):
            self.host.call_later(REBROADCAST_DELAY, self._republish, str(fields.get("name")))

    def _republish(self, name: str) -> None:
        current = self.files.model.current(name)
        if current is None or current.author == self.fingerprint or current.deleted:
            return
        try:
            content = self.plaintext(name)
            recipients = (
                None
                if current.public
                else [r for r in current.recipients if self.keyring.get(r) is not None]
            )
            self.publish(name, content, recipients)
        except (KeyError, NotARecipient, InvalidEnvelope, UnknownFriend):
            return


class _CardFetch:
    """GET /identity at the address the DHT found, then the friend (or why not)."""

    def __init__(
        self,
        peer: SimPeer,
        fingerprint: object,
        address: str,
        result: LookupResult,
        done: Callable[[Friend | DiscoveryError, LookupResult | None], None],
    ) -> None:
        self.peer, self.fingerprint, self.address = peer, fingerprint, address
        self.result, self.done = result, done
        self.status = 0
        self.body: list[bytes] = []
        self.over = False
        self.timer = peer.host.call_later(peer.config.http_timeout, self.error, "TimeoutError")
        self.exchange: Any = None

    def send(self) -> None:
        headers: dict[str, str] = {}
        self.exchange = self.peer.host.request(self.address, "GET", "/identity", headers, b"", self)

    def head(self, status: int, headers: Any) -> None:
        self.status = status

    def data(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def end(self) -> None:
        if self.over:
            return
        self.over = True
        self.timer.cancel()
        try:
            raw = json.loads(b"".join(self.body)) if self.status == 200 else None
            friend = friend_from_card(self.fingerprint, self.address, self.status, raw, self.result)
        except DiscoveryError as error:
            self.done(error, self.result)
            return
        except ValueError as error:
            self.done(unanswered(self.fingerprint, self.address, error, self.result), self.result)
            return
        self.done(friend, self.result)

    def error(self, reason: str) -> None:
        if self.over:
            return
        self.over = True
        self.timer.cancel()
        if self.exchange is not None:
            self.exchange.cancel()
        self.done(unanswered(self.fingerprint, self.address, reason, self.result), self.result)
