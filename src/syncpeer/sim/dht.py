"""The DHT's driver on the simulator: what `syncpeer.io.dht_transport` does over a UDP socket,
done with the host's datagrams and timers. The protocol gets the same two clocks: virtual
monotonic time runs its timers, the node's (skewed) wall clock only timestamps its record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from syncpeer.core.identity import Identity
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.sim.host import Host, Timer
from syncpeer.sim.log import SimLog

MIN_TIMER = 0.001  # as the asyncio driver: a wakeup never comes sooner than this


class SimDht:
    """A node's DHT on the simulated links: `start()` joins, `lookup` finds."""

    def __init__(
        self,
        host: Host,
        identity: Identity,
        config: DhtConfig,
        *,
        port: int,
        address: str,
        http_address: str,
        bootstrap: Sequence[str],
        log: SimLog,
        mutants: Mutants = NO_MUTANTS,
    ) -> None:
        self.host = host
        self.identity = identity
        self.config = config
        self.port = port
        self.address = address
        self.http_address = http_address
        self.bootstrap = list(bootstrap)
        self.log = log.bind(component="dht")
        signer = Signer(identity.card.sign_key, identity.sign)
        self.protocol = DhtProtocol(
            signer,
            address,
            config,
            host.random.randbytes,
            record_source=self._record,
            mutants=mutants,
        )
        self.started_at = 0.0
        self.joined_at: float | None = None
        self._waiters: dict[int, Callable[[LookupResult], None]] = {}
        self._timer: Timer | None = None
        self._timer_at = 0.0

    def _record(self, wall: float) -> AddressRecord:
        return sign_record(
            self.identity, self.http_address, self.address, wall, self.config.record_ttl
        )

    def start(self) -> None:
        self.host.listen_udp(self.port, self._receive)
        self.started_at = self.host.now()
        bound = f"{self.host.address}:{self.port}"
        started = self.config.started_event(self.address, bound, self.bootstrap)
        self.log.info(started.event, **started.fields)
        self._apply(self.protocol.join(self.bootstrap, self.host.now(), wall=self.host.wall()))

    def lookup(
        self, target: int, done: Callable[[LookupResult], None], *, want_value: bool = True
    ) -> None:
        """Look `target` up; `done(result)` when it ends."""
        handle, effects = self.protocol.lookup(target, self.host.now(), want_value=want_value)
        self._waiters[handle] = done
        self._apply(effects)

    def _receive(self, data: bytes, source: str) -> None:
        host = self.host
        self._apply(self.protocol.receive(data, source, host.now(), wall=host.wall()))

    def _tick(self) -> None:
        self._timer = None
        self._apply(self.protocol.advance(self.host.now(), wall=self.host.wall()))

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.host.send_udp(self.port, effect.address, effect.data)
            elif isinstance(effect, LookupDone):
                waiter = self._waiters.pop(effect.handle, None)
                if waiter is not None:
                    waiter(effect.result)
            elif isinstance(effect, LogEvent):
                getattr(self.log, effect.level)(effect.event, **effect.fields)
            elif isinstance(effect, Joined):
                self.joined_at = self.host.now()
                self.log.info(
                    "dht_joined",
                    contacts=effect.contacts,
                    stored=effect.stored,
                    duration_ms=round((self.joined_at - self.started_at) * 1000, 1),
                )
        self._schedule()

    def _schedule(self) -> None:
        """Have `_tick` run at the protocol's next wakeup (an earlier timer is kept: firing
        early costs an `advance` that finds nothing due)."""
        wakeup = self.protocol.next_wakeup()
        if wakeup is None or (self._timer is not None and self._timer_at <= wakeup):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = wakeup
        self._timer = self.host.call_later(max(MIN_TIMER, wakeup - self.host.now()), self._tick)

    def status(self) -> dict[str, Any]:
        status = self.protocol.status()
        joined = self.joined_at
        status["join_ms"] = round((joined - self.started_at) * 1000, 1) if joined else None
        status["counters"]["socket_errors"] = 0
        return status

    def table(self) -> dict[str, Any]:
        return {
            **self.status(),
            **self.protocol.table.to_json(self.host.now()),
            "config": self.config.to_json(),
        }
