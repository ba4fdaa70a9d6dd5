"""The DHT node as a sans-IO state machine: datagrams and time in, effects out.

    protocol = DhtProtocol(signer, "10.0.0.1:7401", DhtConfig(), random_bytes)
    effects = protocol.join(["10.0.0.9:7401"], now, wall=wall)   # Send(...) effects
    effects = protocol.receive(datagram, source, now, wall=wall)  # answers, next lookup steps
    effects = protocol.advance(now, wall=wall)      # RPC timeouts, refresh, republish
    handle, effects = protocol.lookup(target, now)  # ... later LookupDone(handle, result)

The driver sends every `Send`, logs every `LogEvent`, hands each `LookupDone` to whoever
waits for it, and calls `advance` again at `next_wakeup()`. Two clocks come in, kept apart:
`now` is monotonic seconds and runs every timer (RPC and lookup timeouts, refresh,
republish, record expiry; only its differences matter), so moving a node's wall clock moves
none of them; `wall` is the wall clock, read only to timestamp this node's own address
record when it signs it (`record_source(wall)`). Random bytes come from the injected
`random`.

Joining: ping the bootstrap addresses; once one answers, look up our own id (which fills the
table with our neighbours); that lookup carries our address record, and the nodes it asks
keep it, the k nearest among them. The record is stored again the same way (a lookup of our
own id that carries it) every `republish_interval`; buckets no lookup went into,
and no contact of which answered us, for `refresh_interval` are refreshed with a lookup of a
random id in their range.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from syncpeer.core.dht.ids import ID_BITS, bucket_index, id_hex, metric, random_id_in_bucket
from syncpeer.core.dht.lookup import Candidate, Lookup, LookupResult
from syncpeer.core.dht.messages import (
    ANSWERS,
    Contact,
    InvalidMessage,
    Message,
    Signer,
    decode,
    encode,
)
from syncpeer.core.dht.puzzle import satisfies
from syncpeer.core.dht.records import AddressRecord, InvalidRecord, RecordStore
from syncpeer.core.dht.routing import RoutingTable
from syncpeer.core.identity import RandomSource
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import NO_MUTANTS, Mutants

JOIN_RETRY = 2.0  # seconds before pinging the bootstrap nodes again when none answered
JOIN_RETRY_MAX = 30.0
# A join looks into each far bucket until the single nearest node it finds has answered: that
# is 2-3 RPCs that end inside the bucket's range, enough to be known there.
JOIN_REFRESH_K = 1
# A refresh of an idle bucket looks in the same way, not for the k nearest of a random id:
# it is there to show that the range still answers, check a contact of it and hear of its
# nodes (as a BitTorrent DHT node refreshes a bucket with one find_node), and a full lookup
# for an id nobody asked about costs 15-20 RPCs, most of an idle network's traffic.
REFRESH_K = 1


@dataclass(frozen=True)
class DhtConfig:
    k: int = 20
    alpha: int = 3
    disjoint_paths: int = 1
    rpc_timeout: float = 1.0
    lookup_timeout: float = 10.0
    puzzle_bits: int = 0
    refresh_interval: float = 900.0
    republish_interval: float = 600.0
    record_ttl: float = 1800.0
    stale_after: float = 60.0
    max_failures: int = 3
    max_records: int = 10_000

    def started_event(self, address: str, bound: str, bootstrap: list[str]) -> LogEvent:
        """The `dht_started` log line of a node that runs with these settings."""
        return LogEvent(
            "dht_started",
            "info",
            {
                "address": address,
                "bound": bound,
                "bootstrap": bootstrap,
                "k": self.k,
                "alpha": self.alpha,
                "disjoint_paths": self.disjoint_paths,
                "puzzle_bits": self.puzzle_bits,
                "rpc_timeout": self.rpc_timeout,
            },
        )

    def to_json(self) -> dict[str, Any]:
        """The settings a routing-table answer shows."""
        return {
            "k": self.k,
            "alpha": self.alpha,
            "disjoint_paths": self.disjoint_paths,
            "puzzle_bits": self.puzzle_bits,
            "rpc_timeout": self.rpc_timeout,
            "lookup_timeout": self.lookup_timeout,
            "refresh_interval": self.refresh_interval,
            "republish_interval": self.republish_interval,
            "record_ttl": self.record_ttl,
        }


@dataclass(frozen=True)
class Send:
    address: str
    data: bytes


@dataclass(frozen=True)
class LookupDone:
    handle: int
    result: LookupResult


@dataclass(frozen=True)
class Joined:
    """The node's first join finished: its self-lookup ended and its record was sent."""

    contacts: int
    stored: int


Effect = Send | LookupDone | LogEvent | Joined


@dataclass(eq=False)
class _Rpc:
    """An RPC in flight: whom it went to (`expected` None: a bootstrap address) and why."""

    rpc: str
    type: str
    address: str
    expected: int | None
    deadline: float
    purpose: str  # join | check | lookup | store | user
    lookup: int | None = None
    candidate: Candidate | None = None


class DhtProtocol:
    def __init__(
        self,
        signer: Signer,
        address: str,
        config: DhtConfig,
        random: RandomSource,
        record_source: Callable[[float], AddressRecord] | None = None,
        mutants: Mutants = NO_MUTANTS,
    ) -> None:
        """`record_source(wall)` makes this node's address record, freshly signed with
        timestamp `wall`, on each (re)publish; None means the node publishes no record of
        its own. `mutants`: the deliberate bugs of this node's DHT (`wrong-distance`)."""
        self.signer = signer
        self.id = signer.id
        self.me = Contact(self.id, address)
        self.config = config
        self.random = random
        self.record_source = record_source
        self.metric = metric(mutants)
        self.table = RoutingTable(
            self.id, config.k, config.stale_after, config.max_failures, self.metric
        )
        self.records = RecordStore(config.max_records)
        self.own_record: AddressRecord | None = None
        self.counters: Counter[str] = Counter()
        self.joined = False
        self.joining = False
        self._bootstrap: list[str] = []
        self._join_retry_at: float | None = None
        self._join_delay = JOIN_RETRY
        self._join_lookup: int | None = None
        self._join_refreshes: set[int] = set()
        self._join_stored = 0
        self._publish_lookup: int | None = None
        self._refresh_lookup: int | None = None
        self._republish_at: float | None = None
        self._refresh_cache: tuple[tuple[int, ...] | None, float | None] = (None, None)
        self._rpcs: dict[str, _Rpc] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._lookups: dict[int, Lookup] = {}
        self._carried: dict[int, AddressRecord] = {}  # lookup handle -> record its RPCs carry
        self._handles = itertools.count(1)
        self._wall = 0.0  # the wall clock of the input being handled

    # ------------------------------------------------------------------ inputs

    def join(self, bootstrap: Sequence[str], now: float, *, wall: float) -> list[Effect]:
        """Join through `bootstrap` addresses (own address ignored); none: a network of one."""
        self._wall = wall
        self._bootstrap = [a for a in dict.fromkeys(bootstrap) if a and a != self.me.address]
        self.table.touch_all(now)
        if not self._bootstrap:
            self.joined = True
            effects: list[Effect] = [Joined(0, 0)]
            effects += self._publish(now)
            return effects
        self.joining = True
        return self._ping_bootstrap(now)

    def receive(self, data: bytes, source: str, now: float, *, wall: float) -> list[Effect]:
        """A datagram arrived from `source` (where to answer; the sender's own address in the
        message is what goes in the routing table)."""
        self._wall = wall
        self.counters["received"] += 1
        try:
            message, _ = decode(data)
        except InvalidMessage as error:
            self.counters["rejected_invalid"] += 1
            return [
                LogEvent("dht_message_rejected", "debug", {"source": source, "reason": str(error)})
            ]
        sender = message.sender
        if sender.id == self.id:
            return []  # our own datagram came back (we are on our own bootstrap list)
        if not satisfies(sender.id, self.config.puzzle_bits):
            self.counters["rejected_puzzle"] += 1
            return [
                LogEvent(
                    "dht_message_rejected",
                    "debug",
                    {
                        "source": source,
                        "sender": sender.hex,
                        "reason": f"id fails the {self.config.puzzle_bits}-bit puzzle",
                    },
                )
            ]
        effects: list[Effect] = []
        if message.is_request:
            effects += self._answer(message, source, now)
            effects += self._seen(sender, now)
        else:
            effects += self._on_response(message, now)
        return effects

    def advance(self, now: float, *, wall: float) -> list[Effect]:
        """Whatever is due: RPC timeouts, lookup deadlines, join retries, refresh, republish,
        record expiry."""
        self._wall = wall
        effects: list[Effect] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, rpc_id = heapq.heappop(self._deadlines)
            rpc = self._rpcs.pop(rpc_id, None)
            if rpc is not None:
                effects += self._on_timeout(rpc, now)
        for handle, lookup in list(self._lookups.items()):
            lookup.expire(now)
            if lookup.done:
                effects += self._lookup_done(handle, now)
        if self.joined and not self.joining and not len(self.table) and self._bootstrap:
            # Everyone we knew is gone (churn): join again through the bootstrap nodes.
            self.joining = True
            effects.append(LogEvent("dht_rejoining", "info", {"bootstrap": self._bootstrap}))
            effects += self._ping_bootstrap(now)
        if self._join_retry_at is not None and now >= self._join_retry_at:
            self._join_retry_at = None
            effects += self._ping_bootstrap(now)
        if self._republish_at is not None and now >= self._republish_at:
            self._republish_at = None
            effects += self._publish(now)
        if self.joined and self._refresh_lookup is None:
            due = self.table.due_for_refresh(now, self.config.refresh_interval)
            if due:
                index = due[0]
                self.table.touch_bucket(index, now)
                target = random_id_in_bucket(self.id, index, self.random)
                self._refresh_lookup, more = self._start_lookup(
                    target,
                    now,
                    want_value=False,
                    k=REFRESH_K,
                    initial=self.table.refresh_seeds(index, target),
                )
                effects += more
        self.records.expire(now)
        return effects

    def lookup(
        self, target: int, now: float, *, want_value: bool = True
    ) -> tuple[int, list[Effect]]:
        """Start a lookup; its result comes as LookupDone(handle, result). A lookup of
        someone else's id never signs this node's record, so it needs no wall clock."""
        self.counters["lookups"] += 1
        return self._start_lookup(target, now, want_value=want_value)

    def next_wakeup(self) -> float | None:
        """When `advance` must be called next (None: only when a datagram arrives)."""
        while self._deadlines and self._deadlines[0][1] not in self._rpcs:
            heapq.heappop(self._deadlines)  # answered in time: no timeout to wake up for
        times = [self._deadlines[0][0]] if self._deadlines else []
        times += [lookup.deadline for lookup in self._lookups.values()]
        times += [t for t in (self._join_retry_at, self._republish_at) if t is not None]
        if self.joined and self._refresh_lookup is None:
            key = self.table.refresh_key()
            if self._refresh_cache[0] != key:
                self._refresh_cache = (key, self.table.next_refresh(self.config.refresh_interval))
            if self._refresh_cache[1] is not None:
                times.append(self._refresh_cache[1])
        expiry = self.records.next_expiry()
        if expiry is not None:
            times.append(expiry)
        return min(times, default=None)

    # ------------------------------------------------------------------ views

    @property
    def ready(self) -> bool:
        """Joined, and a node that joined through others knows at least one contact: a
        lookup it starts has somewhere to go. (A node with no bootstrap is a network of
        one, ready at once.)"""
        return self.joined and (len(self.table) > 0 or not self._bootstrap)

    def status(self) -> dict[str, Any]:
        return {
            "id": id_hex(self.id),
            "address": self.me.address,
            "joined": self.joined,
            "ready": self.ready,
            "contacts": len(self.table),
            "records": len(self.records),
            "lookups_in_flight": len(self._lookups),
            "rpcs_in_flight": len(self._rpcs),
            "counters": dict(self.counters),
        }

    # ------------------------------------------------------------------ sending

    def _new_rpc_id(self) -> str:
        while True:
            rpc_id = self.random(8).hex()
            if rpc_id not in self._rpcs:
                return rpc_id

    def _request(
        self,
        kind: str,
        address: str,
        expected: int | None,
        now: float,
        purpose: str,
        *,
        target: int | None = None,
        record: AddressRecord | None = None,
        lookup: int | None = None,
        candidate: Candidate | None = None,
    ) -> Send:
        rpc = _Rpc(
            self._new_rpc_id(),
            kind,
            address,
            expected,
            now + self.config.rpc_timeout,
            purpose,
            lookup,
            candidate,
        )
        self._rpcs[rpc.rpc] = rpc
        heapq.heappush(self._deadlines, (rpc.deadline, rpc.rpc))
        message = Message(
            kind,
            rpc.rpc,
            self.me,
            target=target,
            record=record.to_json() if record is not None else None,
        )
        self.counters["sent"] += 1
        return Send(address, encode(message, self.signer))

    def _reply(self, request: Message, kind: str, source: str, **fields: Any) -> Send:
        self.counters["sent"] += 1
        message = Message(kind, request.rpc, self.me, **fields)
        return Send(source, encode(message, self.signer))

    # ------------------------------------------------------------------ answering

    def _answer(self, request: Message, source: str, now: float) -> list[Effect]:
        self.counters[f"served_{request.type}"] += 1
        if request.type == "ping":
            return [self._reply(request, "pong", source)]
        if request.type == "store":
            return [self._store(request, source, now)]
        assert request.target is not None
        if request.type == "find_node" and request.record is not None:
            self._keep_carried(request, now)
        if request.type == "find_value":
            record = self._held(request.target, now)
            if record is not None:
                return [self._reply(request, "value", source, record=record.to_json())]
        nodes = tuple(self.table.closest(request.target, self.config.k, exclude=request.sender.id))
        return [self._reply(request, "nodes", source, nodes=nodes)]

    def _held(self, key: int, now: float) -> AddressRecord | None:
        if key == self.id and self.own_record is not None:
            return self.own_record
        return self.records.get(key, now)

    def _store(self, request: Message, source: str, now: float) -> Send:
        try:
            record = AddressRecord.from_json(request.record)
        except InvalidRecord as error:
            self.counters["store_refused"] += 1
            return self._reply(request, "stored", source, ok=False, reason=str(error))
        if record.key == self.id:
            refused: str | None = "a node keeps its own record"
        else:
            refused = self.records.put(record, now)
        self.counters["store_refused" if refused else "store_accepted"] += 1
        return self._reply(request, "stored", source, ok=refused is None, reason=refused)

    def _keep_carried(self, request: Message, now: float) -> None:
        """A joining node's self-lookup hands its record to every node it asks (instead
        of a STORE round afterwards); only the owner's own lookup may carry it."""
        try:
            record = AddressRecord.from_json(request.record)
        except InvalidRecord:
            self.counters["store_refused"] += 1
            return
        if not record.key == request.target == request.sender.id:
            self.counters["store_refused"] += 1
            return
        refused = self.records.put(record, now)
        self.counters["store_refused" if refused else "store_accepted"] += 1

    # ------------------------------------------------------------------ responses

    def _seen(self, contact: Contact, now: float) -> list[Effect]:
        stale = self.table.seen(contact, now)
        if stale is None:
            return []
        return [self._request("ping", stale.address, stale.id, now, "check")]

    def _on_response(self, message: Message, now: float) -> list[Effect]:
        rpc = self._rpcs.get(message.rpc)
        if rpc is None or message.type not in ANSWERS[rpc.type]:
            self.counters["unexpected_response"] += 1
            # Too late for its RPC, but signed: the sender is alive (an overloaded node
            # answers late; forgetting it would make a busy network forget its busiest).
            return self._seen(message.sender, now) if rpc is None else []
        del self._rpcs[message.rpc]
        if rpc.expected is not None and message.sender.id != rpc.expected:
            # Someone else answered for the id we asked: a wrong address, or a liar.
            self.counters["rejected_identity"] += 1
            return self._on_timeout(rpc, now, state="rejected")
        effects = self._seen(message.sender, now)
        # A contact of that range answered us: the bucket is fresh (BEP 5's rule), so the
        # lookups that cross a busy network anyway spare most refreshes.
        self.table.touch(message.sender.id, now)
        if rpc.purpose == "join":
            effects += self._bootstrap_answered(now)
        elif rpc.lookup is not None and rpc.candidate is not None:
            lookup = self._lookups.get(rpc.lookup)
            if lookup is not None:
                record = self._verified_value(message, lookup.target)
                next_queries = lookup.answered(rpc.candidate, message.nodes, record, now)
                effects += self._query(rpc.lookup, lookup, next_queries, now)
        return effects

    def _verified_value(self, message: Message, target: int) -> AddressRecord | None:
        if message.type != "value":
            return None
        try:
            record = AddressRecord.from_json(message.record)
        except InvalidRecord:
            self.counters["rejected_record"] += 1
            return None
        if record.key != target:
            self.counters["rejected_record"] += 1
            return None
        return record

    def _on_timeout(self, rpc: _Rpc, now: float, state: str = "failed") -> list[Effect]:
        self.counters["rpc_timeouts" if state == "failed" else "rpc_rejected"] += 1
        if rpc.expected is not None:
            self.table.failed(rpc.expected)
        effects: list[Effect] = []
        if rpc.purpose == "join" and self.joining and not self._join_lookup:
            if not any(r.purpose == "join" for r in self._rpcs.values()):
                self._join_retry_at = now + self._join_delay
                self._join_delay = min(self._join_delay * 2, JOIN_RETRY_MAX)
                effects.append(
                    LogEvent(
                        "dht_bootstrap_unreachable",
                        "warning",
                        {"bootstrap": self._bootstrap, "retry_in_s": self._join_retry_at - now},
                    )
                )
        elif rpc.lookup is not None and rpc.candidate is not None:
            lookup = self._lookups.get(rpc.lookup)
            if lookup is not None:
                next_queries = lookup.failed(rpc.candidate, now, state)
                effects += self._query(rpc.lookup, lookup, next_queries, now)
        return effects

    # ------------------------------------------------------------------ lookups

    def _start_lookup(
        self,
        target: int,
        now: float,
        *,
        want_value: bool,
        k: int | None = None,
        initial: list[Contact] | None = None,
        handle: int | None = None,
    ) -> tuple[int, list[Effect]]:
        handle = handle or next(self._handles)
        self.table.touch(target, now)
        lookup = Lookup(
            target,
            self.id,
            initial if initial is not None else self.table.closest(target, self.config.k),
            want_value=want_value,
            k=k or self.config.k,
            alpha=self.config.alpha,
            paths=self.config.disjoint_paths,
            now=now,
            deadline=now + self.config.lookup_timeout,
            accept=self._solves_puzzle if self.config.puzzle_bits else None,
            metric=self.metric,
        )
        self._lookups[handle] = lookup
        return handle, self._query(handle, lookup, lookup.start(now), now)

    def _solves_puzzle(self, node_id: int) -> bool:
        return satisfies(node_id, self.config.puzzle_bits)

    def _query(
        self, handle: int, lookup: Lookup, candidates: list[Candidate], now: float
    ) -> list[Effect]:
        kind = "find_value" if lookup.want_value else "find_node"
        effects: list[Effect] = [
            self._request(
                kind,
                c.contact.address,
                c.contact.id,
                now,
                "lookup",
                target=lookup.target,
                record=self._carried.get(handle),
                lookup=handle,
                candidate=c,
            )
            for c in candidates
        ]
        if lookup.done:
            effects += self._lookup_done(handle, now)
        return effects

    def _lookup_done(self, handle: int, now: float) -> list[Effect]:
        lookup = self._lookups.pop(handle)
        self._carried.pop(handle, None)
        result = lookup.result()
        if handle == self._refresh_lookup:
            self._refresh_lookup = None
            return []
        if handle == self._join_lookup:
            return self._joined(result, now)
        if handle in self._join_refreshes:
            self._join_refreshes.discard(handle)
            return [] if self._join_refreshes else self._join_complete()
        if handle == self._publish_lookup:
            self._publish_lookup = None  # the nodes it asked kept the record as they answered
            self._schedule_republish(now)
            return []
        if not result.found:
            self.counters["lookups_failed"] += 1
        return [LookupDone(handle, result)]

    # ------------------------------------------------------------------ join and publish

    def _ping_bootstrap(self, now: float) -> list[Effect]:
        return [self._request("ping", address, None, now, "join") for address in self._bootstrap]

    def _bootstrap_answered(self, now: float) -> list[Effect]:
        if not self.joining or self._join_lookup is not None:
            return []
        # The self-lookup carries our record: the nodes it asks are the nodes nearest our id
        # (it ends only when the k nearest have answered), so they keep it as they answer,
        # and the join needs no STORE round (a third of its messages).
        self._join_lookup, effects = self._self_lookup(now)
        return effects

    def _joined(self, result: LookupResult, now: float) -> list[Effect]:
        """The self-lookup ended: store our record, then look into every bucket farther out
        than our nearest neighbour.

        Those lookups are what make far-away nodes know us (and us them): without them, nodes
        that join at the same time stay islands around their own ids, and lookups that start
        on the far side never find a way in. They only need to reach into each bucket's
        range, so they stop once the nearest node found has answered (JOIN_REFRESH_K).
        """
        self._join_lookup = None
        if not result.closest:
            # Nobody answered the self-lookup (the bootstrap node is overloaded or gone):
            # nobody knows us yet, so this is no join. Start over after a pause.
            self._join_retry_at = now + self._join_delay
            self._join_delay = min(self._join_delay * 2, JOIN_RETRY_MAX)
            return [
                LogEvent(
                    "dht_join_retry",
                    "warning",
                    {
                        "reason": "no node answered the self-lookup",
                        "retry_in_s": self._join_retry_at - now,
                    },
                )
            ]
        self._schedule_republish(now)
        self._join_stored = len(result.closest) if self.own_record is not None else 0
        effects: list[Effect] = []
        nearest = result.closest[0].id
        first_far = bucket_index(self.id, nearest) + 1 if nearest is not None else ID_BITS
        for index in range(first_far, ID_BITS):
            target = random_id_in_bucket(self.id, index, self.random)
            handle, more = self._start_lookup(
                target,
                now,
                want_value=False,
                k=JOIN_REFRESH_K,
                initial=self.table.refresh_seeds(index, target),
            )
            if handle in self._lookups:
                self._join_refreshes.add(handle)
            effects += more
        if not self._join_refreshes:
            effects += self._join_complete()
        return effects

    def _join_complete(self) -> list[Effect]:
        self.joining = False
        if self.joined:
            return []
        self.joined = True
        return [Joined(len(self.table), self._join_stored)]

    def _publish(self, now: float) -> list[Effect]:
        """Store our record again on the nodes nearest our id: a fresh lookup of our id
        that carries the record, as the join's does (no STORE round after it)."""
        if self.record_source is None:
            return []
        if not len(self.table):  # nobody to hand it to: signed afresh, tried again later
            self._schedule_republish(now)
            self._fresh_record()
            return []
        self._publish_lookup, effects = self._self_lookup(now)
        return effects

    def _self_lookup(self, now: float) -> tuple[int, list[Effect]]:
        """A lookup of our own id that carries our record (freshly signed), if we have
        one: the nodes it asks are the nearest to our id, and each keeps it as it answers."""
        handle = next(self._handles)
        record = self._fresh_record()
        if record is not None:
            self._carried[handle] = record
        return self._start_lookup(self.id, now, want_value=False, handle=handle)

    def _schedule_republish(self, now: float) -> None:
        # Jittered by up to a tenth either way: nodes that joined together would otherwise
        # all republish in the same second, forever.
        jitter = (self.random(1)[0] / 255 - 0.5) / 5
        self._republish_at = now + self.config.republish_interval * (1 + jitter)

    def _fresh_record(self) -> AddressRecord | None:
        if self.record_source is None:
            return None
        self.own_record = self.record_source(self._wall)
        self.counters["publishes"] += 1
        return self.own_record
