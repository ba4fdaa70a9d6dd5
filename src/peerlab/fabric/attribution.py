"""Who a connection or UDP flow comes from: a node (by address or socket owner), a client, or
nobody known, in which case the proxy refuses it (fails closed).

- **address**: the source address is a node's bind address (nodes bind their outgoing
  sockets there): a dictionary lookup on the event loop.
- **owner**: otherwise the process holding the source socket is looked up among the
  environment's node process trees (`identify`, see peerlab.backends.owners), with
  retries until `DEADLINE`. Lookups that queue up while one runs go together in the next
  one (one pass over the trees for a burst of redials). A lookup among a handful of nodes
  costs about a millisecond, so it runs on the event loop: handing it to a thread and back
  costs two wake-ups, which on a loaded machine took 100 ms at p99 (measured with
  `peerlab bench fidelity`). One that took longer than `INLINE_LIMIT` (many nodes) sends
  the next ones to an executor thread, until one is quick again.
- **client**: the owner is known and is no node (the test harness, the CLI), or the
  proxy serves no nodes at all (the standalone Toxiproxy-compatible server).
- **unattributed**: no answer by the deadline, or the socket has no owner left
  (`orphaned`: closed, or its process died): the proxy refuses the connection (drops the
  flow's datagrams) and the refusal is recorded with its 4-tuple. A timeout is never
  taken for a client: faults that name a source, partitions included, would silently not
  apply.

See docs/decisions/0002-fabric-link-identification.md.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Address = tuple[str, int]
How = Literal["address", "owner", "client", "unattributed"]
DEADLINE = 10.0  # seconds a connection's bytes are held while its source is looked up
FIRST_RETRY = 0.02  # seconds before a failed lookup is tried again (doubling)
INLINE_LIMIT = 0.005  # seconds a lookup may hold the event loop
TIMINGS = 4096  # attributions whose durations are kept for the percentiles
REFUSALS = 100  # refusals kept for `net links`


class OwnerOf(Protocol):
    """What `identify` returns: the node holding the socket (None: not a node)."""

    @property
    def node(self) -> str | None: ...


Request = tuple[str, Address, Address]  # protocol, source, destination
Identify = Callable[[list[Request]], Sequence[OwnerOf | None]]


@dataclass(frozen=True)
class Attribution:
    node: str | None  # None: a client
    how: How


def _address(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def describe(hows: dict[str, int]) -> str:
    """`address 2, owner 1`: how the open connections of a link were told."""
    return ", ".join(f"{how} {count}" for how, count in sorted(hows.items())) or "-"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class Attributor:
    """Names the source of each connection and flow a fabric's proxies accept."""

    def __init__(
        self,
        identify: Identify | None = None,
        on_refused: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._identify = identify
        self._on_refused = on_refused
        self._by_bind_ip: dict[str, str] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: list[tuple[Request, asyncio.Future[OwnerOf | None]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._inline = True  # the last lookup was quick enough to run on the loop
        self.counts: collections.Counter[str] = collections.Counter()
        # (how, seconds) of the latest attributions, from arrival to decision.
        self.timings: collections.deque[tuple[How, float]] = collections.deque(maxlen=TIMINGS)
        self.refused: collections.deque[dict[str, Any]] = collections.deque(maxlen=REFUSALS)

    def add_node(self, node: str, public_ip: str, bind_ip: str) -> None:
        if bind_ip != public_ip:
            self._by_bind_ip[bind_ip] = node

    def add_own_address(self, node: str, ip: str) -> None:
        """`node` has an address of its own (a network namespace): what comes from there is
        its, exactly."""
        self._by_bind_ip[ip] = node

    def by_address(self, ip: str) -> Attribution | None:
        """The attribution that needs no lookup, if there is one."""
        node = self._by_bind_ip.get(ip)
        if node is not None:
            return Attribution(node, "address")
        if self._identify is None:
            return Attribution(None, "client")  # a proxy without nodes serves only clients
        return None

    def settled(self, attribution: Attribution, began: float) -> Attribution:
        self.counts[attribution.how] += 1
        self.timings.append((attribution.how, time.monotonic() - began))
        return attribution

    async def attribute(
        self, protocol: str, source: Address, destination: Address, node: str | None
    ) -> Attribution:
        """Who sent from `source` to the proxy at `destination` (of `node`); how it was told."""
        began = time.monotonic()
        known = self.by_address(source[0])
        if known is not None:
            return self.settled(known, began)
        deadline = began + DEADLINE
        retry = FIRST_RETRY
        reason = "the lookup did not finish in time"
        orphaned = False
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                owner = await asyncio.wait_for(
                    self._lookup((protocol, source, destination)), remaining
                )
            except TimeoutError:
                break
            except Exception as exc:  # /proc or netlink failed this time: try again
                reason = f"lookup failed: {exc}"
                await asyncio.sleep(min(retry, max(deadline - time.monotonic(), 0)))
                retry *= 2
                continue
            if owner is None:
                reason = "no live process holds the source socket"
                orphaned = True
                break
            how: How = "owner" if owner.node else "client"
            return self.settled(Attribution(owner.node, how), began)
        refusal = {
            "protocol": protocol,
            "src": _address(source),
            "dst": _address(destination),
            "node": node,
            "reason": reason,
            "orphaned": orphaned,
            "waited_ms": round((time.monotonic() - began) * 1000, 1),
            "wall": time.time(),
        }
        self.refused.append(refusal)
        self.counts["unattributed"] += 1
        if self._on_refused is not None:
            with contextlib.suppress(Exception):
                self._on_refused(refusal)
        return Attribution(None, "unattributed")

    def _lookup(self, request: Request) -> asyncio.Future[OwnerOf | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[OwnerOf | None] = loop.create_future()
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        """Run the queued lookups, all that queued meanwhile in one go, until none is left."""
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = [(r, f) for r, f in self._queue if not f.done()]
            self._queue = []
            if not batch:
                continue
            requests = [request for request, _ in batch]
            try:
                if self._inline:
                    answers, cost = self._timed(requests)
                else:
                    if self._executor is None:
                        self._executor = concurrent.futures.ThreadPoolExecutor(1, "peerlab-owners")
                    answers, cost = await loop.run_in_executor(
                        self._executor, self._timed, requests
                    )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._inline = cost < INLINE_LIMIT
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
            await asyncio.sleep(0)  # what the loop has waiting goes first

    def _timed(self, requests: list[Request]) -> tuple[Sequence[OwnerOf | None], float]:
        assert self._identify is not None
        began = time.monotonic()
        answers = self._identify(requests)
        return answers, time.monotonic() - began

    def stats(self) -> dict[str, Any]:
        """How many sources were told each way, and how long it took (ms): every
        attribution, and those that needed a socket-owner lookup."""
        out: dict[str, Any] = {"counts": dict(self.counts)}
        everything = [seconds * 1000 for _, seconds in self.timings]
        lookups = [seconds * 1000 for how, seconds in self.timings if how != "address"]
        out["owner_lookups"] = len(lookups)
        for key, values in (("attribution_ms", everything), ("owner_lookup_ms", lookups)):
            if values:
                out[key] = {
                    "p50": round(statistics.median(values), 3),
                    "p99": round(percentile(values, 0.99), 3),
                    "max": round(max(values), 3),
                }
        return out

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
