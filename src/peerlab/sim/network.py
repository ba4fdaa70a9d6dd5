"""Simulated links: datagrams and request/answer exchanges between nodes, under faults.

What a message meets on its way is what the fabric's proxies would do to it (docs/faults.md),
on the same fault values: the partition (`Partition.blocks`), and the toxics of the link in
the same `ToxicSet`, chosen with the same `select(src, dst, stream, protocol)`.

- A **datagram** from S to D: dropped when S cannot reach D; else each copy the chain of UDP
  toxics yields (`Toxic.deliver`: loss, duplicate, reorder, latency with jitter) arrives after
  its delay plus the base latency. Held while D is paused (its socket buffer), dropped when
  D is down.
- An **exchange** (an HTTP request and its answer on one TCP connection, opened by S to D):
  refused when D is down; reset at once when the partition cuts S's connections to D (the
  fabric accepts and resets); otherwise the request crosses the upstream chain and waits
  while D is paused; the answer's bytes cross the downstream chain in 64 KiB chunks
  (latency with jitter, bandwidth, loss as retransmission stalls, slicer, timeout,
  reset_peer, limit_data, slow_close) and arrive chunk by chunk, so a cut leaves the client
  what had arrived. A paced answer (a server that trickles) hands its pieces to the
  connection at the times it gives. Applying a partition, `reset`, and a crash or stop of
  either end reset the exchanges open across them.
- The **harness** (S is None: the test's own requests, which go to a node's own address,
  bypassing the fabric) meets no fault and no latency.

What crosses a link is counted in `Links.bytes` as the fabric counts it, for the fault
fidelity checker: a datagram when it is sent on its way, a request when its connection is
let through, an answer's bytes as they arrive.

Toxics act on what is sent after they are applied: an answer already on its way keeps the
timing it was given (a proxy would let held data go at once when a toxic is removed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Protocol

from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.toxics import (
    Bandwidth,
    LimitData,
    Loss,
    ResetPeer,
    Slicer,
    SlowClose,
    Stub,
    Timeout,
    Toxic,
)
from peerlab.fabric.toxics.latency import Latency
from peerlab.fabric.toxics.loss import SEGMENT
from peerlab.seed import derive_rng
from peerlab.sim.loop import EventLoop, Timer

CHUNK = 64 * 1024  # bytes of an answer that travel together (a read of the proxy), at most
BASE_LATENCY = 0.0005  # seconds one way between two nodes, with no toxic
REQUEST_HEAD = 200  # bytes of a request line and its headers, as counted on a link


@dataclass(frozen=True)
class Request:
    """An HTTP request: `path` with its query string, headers, body."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


Pace = tuple[int, int, float]
"""How a server sends an answer's body: (fast, piece, every): the first `fast` bytes at
once, then `piece` bytes every `every` seconds."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer; `body` is every byte the server sends after the head, all at once
    unless `pace` says otherwise."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    pace: Pace | None = None


class Receiver(Protocol):
    """The client's side of an exchange: the head, the body in pieces, then the end or an
    error (exactly one of the two)."""

    def head(self, status: int, headers: Mapping[str, str]) -> None: ...
    def data(self, chunk: bytes) -> None: ...
    def end(self) -> None: ...
    def error(self, reason: str) -> None: ...


class Endpoints(Protocol):
    """What the network asks of the world about nodes."""

    def resolve(self, address: str) -> tuple[str, str] | None:
        """The (node, port name) listening at `address` ("ip:port"), or None."""
        ...

    def deliver_datagram(self, node: str, port: str, data: bytes, source: str) -> None:
        """Hand a datagram to the node's socket now (the world holds or drops it)."""
        ...

    def deliver_request(self, exchange: Exchange) -> None:
        """Hand a request that reached its server to the node now."""
        ...

    def running(self, node: str) -> bool:
        """Whether the node is up (running or paused) to accept a connection."""
        ...

    def ip_of(self, node: str) -> str:
        """The node's address (what a server sees its connections come from)."""
        ...


class _Draws(Stub):
    """A toxic's state on one stream or flow in the simulator: its seeded draws only (no
    event loop, no timers: the network computes when things happen)."""

    def __init__(self, rng: Random, enabled: bool) -> None:
        self.rng = rng
        self.enabled = enabled
        self.removed = False
        self.state = {}


@dataclass
class LinkCounters:
    """What crossed one directed link (src -> dst), and what it lost."""

    datagrams: int = 0
    datagrams_dropped: int = 0
    exchanges: int = 0
    exchanges_refused: int = 0
    exchanges_reset: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


class Exchange:
    """One request and its answer on one connection, from `src` (None: the harness) to
    `dst`'s `port`. The client may `cancel()` it (it gave up: a timeout)."""

    def __init__(
        self,
        network: Network,
        src: str | None,
        dst: str,
        port: str,
        request: Request,
        receiver: Receiver,
        number: int,
    ) -> None:
        self.network = network
        self.src, self.dst, self.port = src, dst, port
        self.request = request
        self.receiver = receiver
        self.number = number  # the connection's number on its link (seeds its toxics)
        self.done = False
        self.answered = False
        self._timers: list[Timer] = []

    @property
    def peer(self) -> str | None:
        """The client's address as the server sees it (None: the harness)."""
        return None if self.src is None else self.network.endpoints.ip_of(self.src)

    def cancel(self) -> None:
        """The client stops listening; nothing more reaches its receiver."""
        self._finish()

    def reply(self, answer: Answer) -> None:
        """The server's answer, sent now."""
        if self.done or self.answered:
            return
        self.answered = True
        self.network._answer(self, answer)

    def fail(self, reason: str) -> None:
        """The connection breaks (reset): the client hears it now."""
        if self.done:
            return
        receiver = self.receiver
        self._finish()
        receiver.error(reason)

    def _finish(self) -> None:
        self.done = True
        self.network._close(self)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _at(self, when: float, callback: Callable[..., None], *args: object) -> None:
        self._timers.append(self.network.loop.call_at(when, self._fire, callback, args))

    def _fire(self, callback: Callable[..., None], args: tuple[object, ...]) -> None:
        if not self.done:
            callback(*args)


class Network:
    """Delivery between the simulated nodes, under the faults of one fault plane."""

    def __init__(self, loop: EventLoop, seed: int, endpoints: Endpoints) -> None:
        self.loop = loop
        self.seed = seed
        self.endpoints = endpoints
        self.links = Links(seed)  # the fault plane's toxics and partition
        self.links.toxics.subscribe(self._toxics_changed)
        self.counters: dict[tuple[str, str], LinkCounters] = {}
        self._open: dict[tuple[str | None, str], dict[Exchange, None]] = {}  # in order
        self._connections: dict[tuple[str | None, str], int] = {}
        self._flows: dict[tuple[str, str, int], _Draws] = {}  # UDP: (src, dst, toxic) -> draws

    # ------------------------------------------------------------------ who reaches whom

    def blocked(self, src: str | None, dst: str) -> bool:
        return self.links.blocked(src, dst)

    def _count(self, src: str | None, dst: str) -> LinkCounters:
        key = (src or "client", dst)
        counters = self.counters.get(key)
        if counters is None:
            counters = self.counters[key] = LinkCounters()
        return counters

    # ------------------------------------------------------------------ datagrams

    def send_datagram(self, src: str, source: str, address: str, data: bytes) -> None:
        """Node `src` sends `data` from its address `source` to `address`."""
        target = self.endpoints.resolve(address)
        if target is None:
            return
        dst, port = target
        counters = self._count(src, dst)
        counters.datagrams += 1
        if self.blocked(src, dst):
            counters.datagrams_dropped += 1
            return
        delays = [0.0]
        toxics = self.links.toxics
        for item in toxics.select(src, dst, "upstream", "udp") if len(toxics) else ():
            draws = self._flow(src, dst, item)
            if draws.enabled:
                delays = [d + extra for d in delays for extra in item.spec.toxic.deliver(draws)]
        if not delays:
            counters.datagrams_dropped += 1
            return
        self._carried(src, dst, "udp", len(data) * len(delays), 0)
        for delay in delays:
            self.loop.call_later(
                BASE_LATENCY + delay, self.endpoints.deliver_datagram, dst, port, data, source
            )

    def _flow(self, src: str, dst: str, item: LinkToxic) -> _Draws:
        key = (src, dst, id(item.spec))
        draws = self._flows.get(key)
        if draws is None:
            rng = derive_rng(self.seed, "udp", src, dst, item.spec.name, item.spec.stream)
            draws = self._flows[key] = _Draws(rng, rng.random() < item.spec.toxicity)
        return draws

    def _toxics_changed(self) -> None:
        """Forget the draws of toxics that are gone (flows draw again for new ones)."""
        live = {id(item.spec) for item in self.links.toxics}
        self._flows = {key: d for key, d in self._flows.items() if key[2] in live}

    # ------------------------------------------------------------------ exchanges

    def open(
        self, src: str | None, address: str, request: Request, receiver: Receiver
    ) -> Exchange | None:
        """Send `request` from `src` to `address`; None when nothing listens there (the
        receiver hears "connection refused" after a round trip)."""
        target = self.endpoints.resolve(address)
        if target is None:
            self.loop.call_later(2 * BASE_LATENCY, receiver.error, "connection refused")
            return None
        dst, port = target
        return self.open_to(src, dst, port, request, receiver)

    def open_to(
        self, src: str | None, dst: str, port: str, request: Request, receiver: Receiver
    ) -> Exchange:
        key = (src, dst)
        number = self._connections.get(key, 0)
        self._connections[key] = number + 1
        exchange = Exchange(self, src, dst, port, request, receiver, number)
        counters = self._count(src, dst)
        counters.exchanges += 1
        if src is None:  # the harness: its own requests go straight to the node
            self._track(exchange)
            if self.endpoints.running(dst):
                self.endpoints.deliver_request(exchange)
            else:
                counters.exchanges_refused += 1
                exchange.fail("connection refused")
            return exchange
        now = self.loop.now
        if not self.endpoints.running(dst):
            counters.exchanges_refused += 1
            exchange._at(now + 2 * BASE_LATENCY, exchange.fail, "connection refused")
            return exchange
        self._track(exchange)
        if self.blocked(src, dst):
            counters.exchanges_reset += 1
            exchange._at(now + 2 * BASE_LATENCY, exchange.fail, "connection reset by peer")
            return exchange
        size = len(request.body) + REQUEST_HEAD
        self._carried(src, dst, "tcp", size, 0)
        if not len(self.links.toxics):  # the fast path: it arrives after one latency
            exchange._at(now + BASE_LATENCY, self.endpoints.deliver_request, exchange)
            return exchange
        plan = self._plan(exchange, "upstream", [(size, now + BASE_LATENCY)])
        if plan.failure is not None:
            exchange._at(plan.failure[0], exchange.fail, plan.failure[1])
        if plan.chunks:  # arrived: the server takes it (a timeout toxic may hold it)
            exchange._at(plan.chunks[-1][0], self.endpoints.deliver_request, exchange)
        return exchange

    def _track(self, exchange: Exchange) -> None:
        self._open.setdefault((exchange.src, exchange.dst), {})[exchange] = None

    def _close(self, exchange: Exchange) -> None:
        open_ = self._open.get((exchange.src, exchange.dst))
        if open_ is not None and open_.pop(exchange, False) is None and not open_:
            del self._open[(exchange.src, exchange.dst)]

    def _answer(self, exchange: Exchange, answer: Answer) -> None:
        now = self.loop.now
        self._count(exchange.dst, exchange.src or "client").bytes += len(answer.body)
        if exchange.src is None:
            exchange.receiver.head(answer.status, answer.headers)
            if answer.body:
                exchange.receiver.data(answer.body)
            exchange.done = True
            self._close(exchange)
            exchange.receiver.end()
            return
        chain = self._chain(exchange, "downstream")
        if not chain and answer.pace is None:
            # The fast path: the whole answer arrives after one latency.
            exchange._at(now + BASE_LATENCY, self._arrive_whole, exchange, answer)
            return
        timed = _pieces(answer, _chunk(chain), now + BASE_LATENCY)
        pieces = [piece for piece, _ in timed]
        plan = self._plan(exchange, "downstream", [(len(p), at) for p, at in timed], chain)
        for index, (when, length) in enumerate(plan.chunks):
            piece = pieces[index][:length]
            first = index == 0
            exchange._at(when, self._arrive_piece, exchange, answer, piece, first)
        if plan.failure is not None:
            exchange._at(plan.failure[0], exchange.fail, plan.failure[1])
        elif len(plan.chunks) == len(pieces) and all(
            length == len(pieces[i]) for i, (_, length) in enumerate(plan.chunks)
        ):
            exchange._at(max(plan.end, plan.chunks[-1][0]), self._arrive_end, exchange)

    def _carried(self, src: str, dst: str, protocol: str, up: int, down: int) -> None:
        """Bytes that crossed the link `src` -> `dst` (`up`) and back on it (`down`)."""
        moved = self.links.bytes.get((src, dst, protocol))
        if moved is None:
            moved = self.links.bytes[(src, dst, protocol)] = [0, 0]
        moved[0] += up
        moved[1] += down

    def _arrive_whole(self, exchange: Exchange, answer: Answer) -> None:
        receiver = exchange.receiver
        receiver.head(answer.status, answer.headers)
        if answer.body and not exchange.done:
            assert exchange.src is not None  # the harness's answers never travel
            self._carried(exchange.src, exchange.dst, "tcp", 0, len(answer.body))
            receiver.data(answer.body)
        if not exchange.done:
            exchange._finish()
            receiver.end()

    def _arrive_piece(self, exchange: Exchange, answer: Answer, piece: bytes, first: bool) -> None:
        if first:
            exchange.receiver.head(answer.status, answer.headers)
        if piece and not exchange.done:
            assert exchange.src is not None  # the harness's answers never travel
            self._carried(exchange.src, exchange.dst, "tcp", 0, len(piece))
            exchange.receiver.data(piece)

    def _arrive_end(self, exchange: Exchange) -> None:
        receiver = exchange.receiver
        exchange._finish()
        receiver.end()

    # ------------------------------------------------------------------ toxics on a stream

    def _chain(self, exchange: Exchange, stream: str) -> list[tuple[Toxic, _Draws]]:
        if exchange.src is None or not len(self.links.toxics):
            return []
        chain = []
        for item in self.links.toxics.select(exchange.src, exchange.dst, stream, "tcp"):
            rng = derive_rng(
                self.seed,
                "tcp",
                exchange.src,
                exchange.dst,
                exchange.number,
                item.spec.name,
                stream,
            )
            draws = _Draws(rng, rng.random() < item.spec.toxicity)
            if draws.enabled:
                chain.append((item.spec.toxic, draws))
        return chain

    def _plan(
        self,
        exchange: Exchange,
        stream: str,
        chunks: list[tuple[int, float]],
        chain: list[tuple[Toxic, _Draws]] | None = None,
    ) -> _Plan:
        """When each chunk (size, ready time) comes out of the stream's toxics."""
        plan = _Plan([(ready, size) for size, ready in chunks], chunks[-1][1] if chunks else 0)
        for toxic, draws in self._chain(exchange, stream) if chain is None else chain:
            plan = _through(toxic, draws, plan, self.loop.now)
        return plan

    # ------------------------------------------------------------------ cutting

    def reset(self, src: str | None, dst: str | None, reason: str = "connection reset") -> int:
        """Reset the open exchanges that carry data from `src` to `dst` (None: any node)."""
        doomed = [
            exchange
            for (client, server), exchanges in list(self._open.items())
            if client is not None and _carries(client, server, src, dst)
            for exchange in exchanges
        ]
        for exchange in doomed:
            self._count(exchange.src, exchange.dst).exchanges_reset += 1
            exchange.fail(reason)
        return len(doomed)

    def cut_blocked(self) -> int:
        """Reset the exchanges the partition now blocks (by who opened them)."""
        doomed = [
            exchange
            for (client, server), exchanges in list(self._open.items())
            if self.blocked(client, server)
            for exchange in exchanges
        ]
        for exchange in doomed:
            self._count(exchange.src, exchange.dst).exchanges_reset += 1
            exchange.fail("connection reset by peer")
        return len(doomed)

    def node_down(self, node: str) -> None:
        """`node` went down: its connections break (its clients hear a reset)."""
        doomed = [
            exchange
            for (client, server), exchanges in list(self._open.items())
            if node in (client, server)
            for exchange in exchanges
        ]
        for exchange in doomed:
            if exchange.dst == node:
                exchange.fail("connection reset by peer")
            else:
                exchange.cancel()


def _pieces(answer: Answer, size: int, ready: float) -> list[tuple[bytes, float]]:
    """The answer's body cut into what travels together, each with when it is handed to
    the connection: at `ready`, or as its pace says."""
    body = answer.body
    fast, piece, every = answer.pace or (len(body), 1, 0.0)
    pieces = [(body[i : min(i + size, fast)], ready) for i in range(0, fast, size)]
    pieces += [
        (body[at : at + piece], ready + every * (n + 1))
        for n, at in enumerate(range(fast, len(body), piece))
    ]
    return pieces or [(b"", ready)]


def _chunk(chain: list[tuple[Toxic, _Draws]]) -> int:
    """How many bytes travel together: a read of the proxy, or a tenth of a second of the
    slowest bandwidth on the way (so a cut transfer leaves the bytes that had arrived)."""
    rates = [toxic.rate * 1000 for toxic, _ in chain if isinstance(toxic, Bandwidth)]
    return max(1024, min(CHUNK, int(min(rates) / 10))) if rates else CHUNK


def _carries(client: str, server: str, src: str | None, dst: str | None) -> bool:
    return (src in (None, client) and dst in (None, server)) or (
        src in (None, server) and dst in (None, client)
    )


@dataclass
class _Plan:
    """Chunks as (arrival time, bytes that arrive), when the stream ends, and a failure
    (time, reason) that breaks it."""

    chunks: list[tuple[float, int]]
    end: float
    failure: tuple[float, str] | None = None


def _through(toxic: Toxic, draws: _Draws, plan: _Plan, now: float) -> _Plan:
    """What one toxic makes of a stream's chunks: chunks keep their order, and each leaves
    no earlier than the one before it (a byte stream)."""
    out: list[tuple[float, int]] = []
    previous = -math.inf
    failure = plan.failure
    end = plan.end
    if isinstance(toxic, Timeout):
        if toxic.timeout > 0:
            closing = (now + toxic.timeout / 1000, "connection closed (timeout toxic)")
            failure = min(failure, closing) if failure else closing
        return _Plan([], math.inf, failure)
    if isinstance(toxic, SlowClose):
        return _Plan(list(plan.chunks), end + toxic.delay / 1000, failure)
    sent = 0
    for arrival, size in plan.chunks:
        start = max(arrival, previous)
        leave = start
        if isinstance(toxic, Latency):
            leave = max(arrival + toxic.delay(draws), previous)
        elif isinstance(toxic, Bandwidth):
            leave = start + size / (toxic.rate * 1000)
        elif isinstance(toxic, Loss):
            segments = max(1, -(-size // SEGMENT))
            stalled = draws.rng.random() < 1 - (1 - toxic.percent / 100) ** segments
            leave = start + (toxic.rto / 1000 if stalled else 0.0)
        elif isinstance(toxic, Slicer):
            pieces = max(1, -(-size // max(1, toxic.average_size)))
            leave = start + pieces * toxic.delay / 1e6
        elif isinstance(toxic, ResetPeer) and failure is None:
            failure = (start + toxic.timeout / 1000, "connection reset (reset_peer toxic)")
        elif isinstance(toxic, LimitData) and sent + size >= toxic.bytes:
            # The rest of the limit goes through, then the connection closes.
            if toxic.bytes > sent:
                out.append((leave, toxic.bytes - sent))
            failure = failure or (leave, "connection closed (limit_data toxic)")
            break
        # Other toxics (duplicate, reorder) act on UDP only: TCP data passes untouched.
        sent += size
        out.append((leave, size))
        previous = leave
    last = out[-1][0] if out else now
    return _Plan(out, max(end, last), failure)
