"""The DHT over asyncio UDP: one datagram socket and one timer drive `DhtProtocol`.

The socket is bound to the node's listen host (`--host`) and every datagram leaves from it,
so a fabric in front of the node sees the node's own source address and relays its answers
back through the node's proxy. The address written in messages is `--dht-advertise`, the
one other nodes dial (the fabric's proxy, or a NAT's public side), never the bound one.

The protocol gets two clocks: the monotonic clock runs its timers, the wall clock only
timestamps the node's own address record. A skewed wall clock (libfaketime, peerlab's
clock-skew nemesis) therefore moves the record's timestamp but none of the timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Sequence
from typing import Any

from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.dht.messages import Signer
from syncpeer.core.dht.protocol import (
    DhtConfig,
    DhtProtocol,
    Effect,
    Joined,
    LogEvent,
    LookupDone,
    Send,
)
from syncpeer.core.dht.records import AddressRecord, sign_record
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.keyring import parse_address
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.io.logs import Logger

RECEIVE_BUFFER = 4 << 20  # a bootstrap node gets a burst of joins at once
MIN_TIMER = 0.001


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, service: DhtService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.service.on_datagram(data, format_address(addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier datagram (a peer that is gone): its RPC times out.
        self.service.counters_errors += 1


class DhtService:
    """A node's DHT: start it, `join()`, then `lookup()` fingerprints."""

    def __init__(
        self,
        identity: Identity,
        config: DhtConfig,
        *,
        host: str,
        port: int,
        advertise: str | None,
        http_address: str,
        bootstrap: Sequence[str],
        log: Logger,
        random: RandomSource,
        mutants: Mutants = NO_MUTANTS,
    ) -> None:
        self.identity = identity
        self.mutants = mutants
        self.config = config
        self.host = host
        self.port = port
        self.advertise = advertise
        self.http_address = http_address
        self.bootstrap = list(bootstrap)
        self.log = log.bind(component="dht")
        self.random = random
        self.protocol: DhtProtocol | None = None
        self.counters_errors = 0
        self.started_at = 0.0
        self.joined_at: float | None = None
        self.joined = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._waiters: dict[int, asyncio.Future[LookupResult]] = {}
        self._addresses: dict[str, tuple[str, int]] = {}

    @property
    def address(self) -> str:
        """The public DHT address other nodes reach this one at."""
        return self.advertise or format_address(self.host, self.port)

    def _record(self, wall: float) -> AddressRecord:
        return sign_record(
            self.identity, self.http_address, self.address, wall, self.config.record_ttl
        )

    async def start(self) -> None:
        """Bind the UDP socket (OSError if the port is taken)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        signer = Signer(self.identity.card.sign_key, self.identity.sign)
        self.protocol = DhtProtocol(
            signer,
            self.address,
            self.config,
            self.random,
            record_source=self._record,
            mutants=self.mutants,
        )
        self.started_at = time.monotonic()
        bound = format_address(self.host, self.port)
        started = self.config.started_event(self.address, bound, self.bootstrap)
        self.log.info(started.event, **started.fields)

    async def join(self) -> None:
        """Start joining through the bootstrap addresses; `joined` is set when done."""
        assert self.protocol is not None
        bootstrap = []
        for address in self.bootstrap:
            try:
                host, port = parse_address(address)
                resolved = await self._resolve(host, port)
            except (OSError, ValueError) as error:
                self.log.warning("dht_bootstrap_invalid", bootstrap=address, error=str(error))
                continue
            bootstrap.append(format_address(*resolved))
        self._apply(self.protocol.join(bootstrap, time.monotonic(), wall=time.time()))

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        try:
            ipaddress.ip_address(host)
            return host, port
        except ValueError:
            pass
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        return str(infos[0][4][0]), port

    async def lookup(self, target: int, *, want_value: bool = True) -> LookupResult:
        """Look `target` up in the network (want_value: its address record)."""
        assert self.protocol is not None
        handle, effects = self.protocol.lookup(target, time.monotonic(), want_value=want_value)
        waiter: asyncio.Future[LookupResult] = asyncio.get_running_loop().create_future()
        self._waiters[handle] = waiter
        self._apply(effects)
        try:
            return await waiter
        finally:
            self._waiters.pop(handle, None)

    def on_datagram(self, data: bytes, source: str) -> None:
        if self.protocol is not None:
            self._apply(self.protocol.receive(data, source, time.monotonic(), wall=time.time()))

    def _tick(self) -> None:
        self._timer = None
        if self.protocol is not None:
            self._apply(self.protocol.advance(time.monotonic(), wall=time.time()))

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._send(effect)
            elif isinstance(effect, LookupDone):
                waiter = self._waiters.get(effect.handle)
                if waiter is not None and not waiter.done():
                    waiter.set_result(effect.result)
            elif isinstance(effect, LogEvent):
                getattr(self.log, effect.level)(effect.event, **effect.fields)
            elif isinstance(effect, Joined):
                self._on_joined(effect)
        self._schedule()

    def _send(self, send: Send) -> None:
        destination = self._addresses.get(send.address)
        if destination is None:
            try:
                destination = parse_address(send.address)
            except ValueError:
                return
            if len(self._addresses) < 100_000:
                self._addresses[send.address] = destination
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(send.data, destination)

    def _schedule(self) -> None:
        """Have `_tick` run at the protocol's next wakeup. Called after every datagram, so a
        timer that fires no later than needed is kept: firing early only costs an `advance`
        that finds nothing due, and then the timer is set again."""
        if self.protocol is None:
            return
        wakeup = self.protocol.next_wakeup()
        if wakeup is None or (self._timer is not None and self._timer_at <= wakeup):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = wakeup
        delay = max(wakeup - time.monotonic(), MIN_TIMER)
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _on_joined(self, joined: Joined) -> None:
        self.joined_at = time.monotonic()
        self.joined.set()
        self.log.info(
            "dht_joined",
            contacts=joined.contacts,
            stored=joined.stored,
            duration_ms=round((self.joined_at - self.started_at) * 1000, 1),
        )

    def status(self) -> dict[str, Any]:
        assert self.protocol is not None
        status = self.protocol.status()
        status["join_ms"] = (
            round((self.joined_at - self.started_at) * 1000, 1) if self.joined_at else None
        )
        status["counters"]["socket_errors"] = self.counters_errors
        return status

    def table(self) -> dict[str, Any]:
        assert self.protocol is not None
        return {
            **self.status(),
            **self.protocol.table.to_json(time.monotonic()),
            "config": self.config.to_json(),
        }

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._waiters.values():
            waiter.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
