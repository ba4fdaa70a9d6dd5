"""A running syncpeer node: wires identity, keyring, store, HTTP API and sync loop together.

`main(argv)` is what `syncpeer run` calls. The test framework's fork-server imports this module
once and calls `main` in freshly forked children, so `main` keeps no module-level state, builds
its own event loop (uvloop when installed) and installs its own SIGTERM/SIGINT handlers.
Importing this module imports everything a node needs, and nothing big is allocated at import.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Sequence
from random import Random
from typing import TextIO

import aiohttp
from aiohttp import web

from syncpeer.core import envelope
from syncpeer.core.dht.ids import node_id_of
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.puzzle import satisfies, solve
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.keyring import Friend, friend_event
from syncpeer.core.names import validate_name
from syncpeer.core.publishing import seal_next, sealed_event, stored
from syncpeer.core.store import Decision, StoredFile
from syncpeer.core.sync import SyncConfig, SyncEngine
from syncpeer.core.sync_events import FriendAdded, FriendRemoved
from syncpeer.io import byzantine
from syncpeer.io.admin import AdminApi
from syncpeer.io.api import PublicApi
from syncpeer.io.client import PeerClient, new_session
from syncpeer.io.config import NodeConfig, parse_run_args
from syncpeer.io.datadir import DataDir
from syncpeer.io.deletes import DeleteApi
from syncpeer.io.dht_admin import DhtAdminApi
from syncpeer.io.dht_transport import DhtService, format_address
from syncpeer.io.discovery import DiscoveryError, discover_friend
from syncpeer.io.filestore import Clock, FileStore
from syncpeer.io.httperrors import error_middleware
from syncpeer.io.logs import EventRing, make_logger
from syncpeer.io.syncer import Syncer

try:
    import uvloop
except ImportError:  # uvloop is optional
    uvloop = None  # type: ignore[assignment]

MAX_REQUEST_BYTES = 96 << 20  # a 64 MiB file, base64-encoded, in POST /admin/files


def _warm_up_crypto() -> None:
    """Seal and open one tiny envelope with fixed keys.

    OpenSSL initialises itself lazily on first use, at about 4 MB of private memory per
    process. Doing it once here, at import, lets a fork-server that pre-imports this module
    share that memory with every node it forks. Costs a few milliseconds.
    """
    identity = Identity("warm-up", bytes(32), bytes(range(32)))
    data = envelope.seal(
        identity,
        name="warm-up",
        version=1,
        timestamp=0.0,
        plaintext=b"",
        recipients=[],
        random=bytes,
    )
    envelope.decrypt(envelope.verify(data), identity)


_warm_up_crypto()


class Node:
    """One peer. Build it, `await start()`, and `await stop()` when done.

    `clock` is the wall clock (envelope timestamps, Last-Modified) and `random` the source of
    key material, nonces and ids; both are injectable so a test can make a node's output
    reproducible. Timers run on `time.monotonic()`, which clock skew does not move.
    """

    def __init__(
        self,
        config: NodeConfig,
        *,
        stream: TextIO | None = None,
        clock: Clock = time.time,
        random: RandomSource = os.urandom,
    ) -> None:
        self.config = config
        self.random = random
        self.mutants = config.mutants
        self.versions = config.versions
        self.events = EventRing()
        self.log = make_logger(config.name, config.log_level, self.events, stream)
        self.data = DataDir(config.data_dir)
        self.data.prepare()
        if config.udp_port is not None:
            self._solve_puzzle(config, random)
        self.identity, created = self.data.identity(config.name, random)
        if created:
            self.log.info(
                "identity_created", trace_id=self.new_trace_id(), fingerprint=self.fingerprint
            )
        self.keyring = self.data.load_keyring(self.fingerprint)
        self.files = FileStore(self.data, clock, self.mutants)
        self.engine = SyncEngine(
            self.fingerprint,
            self.files.model,
            random=Random(random(32)),
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
        self.syncer = Syncer(self.engine, self.files, self.log)
        for friend in self.keyring:
            self.syncer.feed(FriendAdded(friend.fingerprint, friend.address))
        # Part of the listing ETag, so a restarted node never answers 304 to a stale ETag
        # that happens to carry the same generation number.
        self.instance = random(4).hex()
        self.port = config.port
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.dht: DhtService | None = None
        self._join_task: asyncio.Task[None] | None = None

    def _solve_puzzle(self, config: NodeConfig, random: RandomSource) -> None:
        """A new identity must pass the DHT's puzzle; an existing one that does not is an
        error (other nodes would drop every message from it)."""
        bits = config.dht.puzzle_bits
        existing = self.data.load_identity()
        if existing is None and bits > 0:
            self.data.save_identity(solve(config.name, random, bits))
        elif existing is not None and not satisfies(node_id_of(existing.card.sign_key), bits):
            raise ValueError(
                f"identity {existing.fingerprint} in {config.data_dir} does not solve the "
                f"{bits}-bit puzzle (--puzzle-bits); start with a new data dir"
            )

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def address(self) -> str:
        """Where friends reach this node: --advertise, else the bound host and port."""
        if self.config.advertise:
            return self.config.advertise
        host = self.config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def new_trace_id(self) -> str:
        return self.random(8).hex()

    async def start(self) -> None:
        for path, reason in self.files.load():
            self.log.warning("file_ignored", component="store", path=str(path), reason=reason)
        app = web.Application(
            middlewares=[error_middleware(self.log), *byzantine.install(self)],
            client_max_size=MAX_REQUEST_BYTES,
        )
        app.add_routes(
            PublicApi(self).routes()
            + AdminApi(self).routes()
            + DhtAdminApi(self).routes()
            + DeleteApi(self).routes()
        )
        # A short shutdown_timeout: on SIGTERM, downloads we are serving are cut off (the peer
        # resumes them elsewhere) instead of holding the exit for aiohttp's default 60 s.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        listener = _listen(self.config.host, self.config.port)
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        self._session = new_session(self.config.source_address)
        self.syncer.start(PeerClient(self._session, self.mutants, self.versions))
        if self.config.udp_port is not None:
            await self._start_dht()
        # The leak-private-key mutant: the whole identity (what identity.json holds) logged
        # as a debugging aid, private keys and all.
        leaked = {"identity": self.identity.to_json()} if "leak-private-key" in self.mutants else {}
        self.log.info(
            "node_started",
            **leaked,
            trace_id=self.new_trace_id(),
            fingerprint=self.fingerprint,
            address=self.address,
            host=self.config.host,
            port=self.port,
            source_address=self.config.source_address,
            friends=len(self.keyring),
            files=len(self.files.model.files()),
            protocols=list(self.versions.speaks),
        )

    async def _start_dht(self) -> None:
        config = self.config
        advertise = config.dht_advertise
        if advertise is None and config.advertise and config.udp_port:
            # Behind a proxy or NAT the HTTP advertise host is the public one for UDP too.
            host = config.advertise.rpartition(":")[0].strip("[]")
            advertise = format_address(host, config.udp_port)
        self.dht = DhtService(
            self.identity,
            config.dht,
            host=config.host,
            port=config.udp_port or 0,
            advertise=advertise,
            http_address=self.address,
            bootstrap=config.bootstrap,
            log=self.log,
            random=self.random,
            mutants=self.mutants,
        )
        await self.dht.start()
        self._join_task = asyncio.create_task(self.dht.join())

    async def discover_friend(self, fingerprint: object) -> tuple[Friend, LookupResult]:
        """Resolve `fingerprint` through the DHT into a verified friend (not yet added)."""
        if self.dht is None or self._session is None:
            raise DiscoveryError(409, "this node runs no DHT (start it with --udp-port)")
        return await discover_friend(self.dht, self._session, fingerprint, self.config.http_timeout)

    async def stop(self) -> None:
        if self._join_task is not None:
            self._join_task.cancel()
            await asyncio.gather(self._join_task, return_exceptions=True)
        if self.dht is not None:
            await self.dht.stop()
        await self.syncer.stop()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.log.info("node_stopped")

    def add_friend(self, friend: Friend) -> bool:
        added = self.keyring.add(friend)
        self.data.save_keyring(self.keyring)
        self.syncer.feed(FriendAdded(friend.fingerprint, friend.address))
        event = friend_event(friend, added, self.new_trace_id())
        self.log.info(event.event, **event.fields)
        return added

    def remove_friend(self, fingerprint: str) -> Friend:
        friend = self.keyring.remove(fingerprint)
        self.data.save_keyring(self.keyring)
        self.syncer.feed(FriendRemoved(fingerprint))
        self.log.info("friend_removed", trace_id=self.new_trace_id(), friend=fingerprint)
        return friend

    def store_sealed(self, data: bytes) -> tuple[StoredFile, Decision]:
        """Verify an envelope this node just sealed and store it by the version rule."""
        file = stored(data, self.mutants)
        decision = self.files.model.decide(file)
        self.files.accept_bytes(decision, data)
        return file, decision

    def seal(
        self, name: str, content: bytes | None, recipients: Sequence[str] | None
    ) -> StoredFile:
        """Seal and store the next version of `name` (None content: its tombstone)."""
        cards = None if recipients is None else self.keyring.cards_for(recipients)
        trace_id = self.new_trace_id()
        data = seal_next(
            self.identity,
            self.files.model,
            name,
            content=content,
            recipients=cards,
            timestamp=self.files.clock(),
            random=self.random,
            trace_id=trace_id,
        )
        file, decision = self.store_sealed(data)
        event = sealed_event(file, decision, trace_id)
        getattr(self.log, event.level)(event.event, **event.fields)
        return file

    def publish(self, name: object, content: bytes, recipients: Sequence[str] | None) -> StoredFile:
        """Seal `content` as the next version of `name` for `recipients` (None: public)."""
        return self.seal(validate_name(name), content, recipients)

    def plaintext(self, name: str) -> bytes:
        """Decrypt the current version of `name`.

        Raises KeyError when it is not held and NotARecipient when it is not for this node.
        """
        found = self.files.read_current(name)
        if found is None:
            raise KeyError(name)
        _, data = found
        return envelope.decrypt(envelope.verify(data, self.mutants), self.identity)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    listener.listen(128)
    listener.setblocking(False)
    return listener


async def serve(config: NodeConfig) -> int:
    """Run a node until SIGTERM or SIGINT; 0 after a clean shutdown, 1 if it cannot start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        node = Node(config)
    except (OSError, ValueError) as error:
        make_logger(config.name, "info").error(
            "node_failed", error=str(error), data_dir=str(config.data_dir)
        )
        return 1
    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            node.log.warning("signal_handler_unavailable", signal=signum.name)
    try:
        await node.start()
    except OSError as error:
        node.log.error("node_failed", error=str(error), port=config.port)
        await node.stop()
        return 1
    try:
        await stop.wait()
        node.log.info("node_stopping")
    finally:
        await node.stop()
        for signum in handled:
            loop.remove_signal_handler(signum)
    return 0


def main(argv: Sequence[str]) -> int:
    """Entry point of `syncpeer run` (argv without the "run"); returns the exit status."""
    argv = list(argv)
    if argv[:1] == ["run"]:
        argv = argv[1:]
    try:
        config = parse_run_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(config))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
