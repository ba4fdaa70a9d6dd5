"""Iterative lookups over `d` disjoint paths (S/Kademlia), `alpha` RPCs in flight per path.

The k contacts nearest to the target in the routing table are dealt out to the paths in
turn. Each path then runs Kademlia's iterative lookup on its own: ask the nearest contacts
it has not asked yet, merge the contacts they name into its own shortlist, and stop once
its k nearest live contacts have all answered. A contact asked by one path is never asked
by another, so when one path runs into nodes that lie, the others are not led there by them.
A value lookup ends as soon as any path gets a verified record.

A lookup only decides whom to ask next; `protocol.py` sends the RPCs and feeds the answers
back. Shortlists are keyed by (id, address): a liar can name a real id at a wrong address,
and that must not hide the real address. At most MAX_ADDRESSES_PER_ID addresses of one id
are kept per path, so a liar cannot flood a path with addresses for one id either.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from syncpeer.core.dht.ids import Metric, distance, id_hex, parse_id
from syncpeer.core.dht.messages import Contact
from syncpeer.core.dht.records import AddressRecord
from syncpeer.core.logevent import LogEvent

MAX_ADDRESSES_PER_ID = 3

Key = tuple[int, str]
_LIVE = frozenset(("new", "pending", "answered"))


@dataclass(eq=False, slots=True)
class Candidate:
    """A contact a path may ask; `via` is the candidate that named it (None: own table),
    `gap` its distance to the target (by the lookup's metric: shortlists sort by it)."""

    contact: Contact
    path: int
    depth: int
    via: Candidate | None
    gap: int = 0
    state: str = "new"  # new | pending | answered | failed | rejected
    sent_at: float | None = None
    rtt: float | None = None
    returned: int = 0
    key: Key = field(init=False, repr=False)  # (id, address): asked for at every step

    def __post_init__(self) -> None:
        self.key = (self.contact.id, self.contact.address)


_GAP = attrgetter("gap")


@dataclass
class Path:
    candidates: dict[Key, Candidate] = field(default_factory=dict)
    # The same candidates nearest first (ties in the order they came): a lookup asks for
    # its k nearest live ones after every answer, and a sort each time was most of it.
    ordered: list[Candidate] = field(default_factory=list)
    addresses: Counter[int] = field(default_factory=Counter)  # candidates per id
    done: bool = False

    def pending(self) -> int:
        return sum(1 for c in self.candidates.values() if c.state == "pending")


@dataclass(frozen=True)
class LookupResult:
    target: int
    origin: int
    want_value: bool
    found: bool
    record: AddressRecord | None
    holder: Contact | None
    hops: int
    path: tuple[Candidate, ...]  # from the origin's table to the holder (or the nearest)
    closest: tuple[Contact, ...]  # contacts that answered, nearest first (at most k)
    queried: tuple[Candidate, ...]  # every RPC the lookup made, in the order sent
    reason: str | None  # why nothing was found
    paths: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        def contact_json(contact: Contact) -> dict[str, Any]:
            gap = contact.id ^ self.target
            return {
                "id": contact.hex,
                "address": contact.address,
                "distance": id_hex(gap),
                "distance_bits": gap.bit_length(),
            }

        def candidate_json(candidate: Candidate) -> dict[str, Any]:
            return {
                **contact_json(candidate.contact),
                "path": candidate.path,
                "depth": candidate.depth,
                "via": candidate.via.contact.hex if candidate.via is not None else None,
                "state": candidate.state,
                "rtt_ms": None if candidate.rtt is None else round(candidate.rtt * 1000, 3),
                "returned": candidate.returned,
            }

        gap = self.origin ^ self.target
        return {
            "target": id_hex(self.target),
            "origin": id_hex(self.origin),
            "kind": "value" if self.want_value else "node",
            "found": self.found,
            "record": self.record.to_json() if self.record is not None else None,
            "holder": contact_json(self.holder) if self.holder is not None else None,
            "hops": self.hops,
            "distance": id_hex(gap),
            "distance_bits": gap.bit_length(),
            "path": [candidate_json(c) for c in self.path],
            "closest": [contact_json(c) for c in self.closest],
            "queried": [candidate_json(c) for c in self.queried],
            "rpcs": len(self.queried),
            "failures": sum(1 for c in self.queried if c.state in ("failed", "rejected")),
            "disjoint_paths": self.paths,
            "reason": self.reason,
            "duration_ms": round(self.seconds * 1000, 3),
        }


def lookup_request(body: dict[str, Any]) -> tuple[int, bool]:
    """The target and whether to find its record, from a `POST /admin/dht/lookup` body;
    ValueError naming what is wrong."""
    target = parse_id(body.get("key"), "key")
    want_value = body.get("value", True)
    if not isinstance(want_value, bool):
        raise ValueError("value must be a boolean (true: find the record)")
    return target, want_value


def lookup_answer(result: LookupResult, duration_ms: float) -> tuple[dict[str, Any], LogEvent]:
    """What `POST /admin/dht/lookup` answers for a lookup that took `duration_ms`, and the
    `dht_lookup` log line that records it."""
    answer = result.to_json()
    answer["duration_ms"] = round(duration_ms, 3)
    keys = ("target", "kind", "found", "hops", "rpcs", "failures", "duration_ms")
    return answer, LogEvent("dht_lookup", "info", {key: answer[key] for key in keys})


class Lookup:
    """The state of one lookup; the protocol drives it with `start`, `answered`, `failed`."""

    def __init__(
        self,
        target: int,
        origin: int,
        initial: Sequence[Contact],
        *,
        want_value: bool,
        k: int,
        alpha: int,
        paths: int,
        now: float,
        deadline: float,
        accept: Callable[[int], bool] | None = None,
        metric: Metric = distance,
    ) -> None:
        """`accept(id)`: whether a contact may be asked at all (None: every one may)."""
        self.target = target
        self.metric = metric
        self.origin = origin
        self.want_value = want_value
        self.k = k
        self.alpha = alpha
        self.accept = accept
        self.started = now
        self.deadline = deadline
        self.paths = [Path() for _ in range(max(1, paths))]
        self.used: set[Key] = set()
        self.sent: list[Candidate] = []
        self.record: AddressRecord | None = None
        self.holder: Candidate | None = None
        self.finished_at: float | None = None
        self.reason: str | None = None
        ordered = sorted(initial, key=lambda contact: metric(contact.id, target))
        for position, contact in enumerate(ordered[:k]):
            self._add(position % len(self.paths), (contact,), 1, None)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def _add(
        self, path_index: int, contacts: Sequence[Contact], depth: int, via: Candidate | None
    ) -> None:
        """Make `contacts` candidates of the path (those it may ask and does not hold)."""
        origin, accept, metric, target = self.origin, self.accept, self.metric, self.target
        path = self.paths[path_index]
        candidates, ordered, addresses = path.candidates, path.ordered, path.addresses
        for contact in contacts:  # the hottest loop of a lookup: every contact of every answer
            node_id = contact.id
            if node_id == origin or (accept is not None and not accept(node_id)):
                continue
            key = (node_id, contact.address)
            if key in candidates:
                continue
            held = addresses.get(node_id, 0)
            if held >= MAX_ADDRESSES_PER_ID:
                continue
            addresses[node_id] = held + 1
            gap = metric(node_id, target)
            candidate = candidates[key] = Candidate(contact, path_index, depth, via, gap)
            insort(ordered, candidate, key=_GAP)

    def _live(self, path: Path) -> list[Candidate]:
        """The path's k nearest candidates that have not failed and no other path took."""
        used, k = self.used, self.k
        live: list[Candidate] = []
        for c in path.ordered:
            state = c.state
            if state in _LIVE and not (state == "new" and c.key in used):
                live.append(c)
                if len(live) == k:
                    break
        return live

    def _next(self, now: float) -> list[Candidate]:
        if self.done:
            return []
        if now >= self.deadline:
            self._finish(now, "timeout")
            return []
        queries: list[Candidate] = []
        for path in self.paths:
            if path.done:
                continue
            live = self._live(path)
            in_flight = sum(1 for c in live if c.state == "pending")
            for candidate in live:
                if in_flight >= self.alpha:
                    break
                if candidate.state == "new":
                    candidate.state, candidate.sent_at = "pending", now
                    self.used.add(candidate.key)
                    self.sent.append(candidate)
                    queries.append(candidate)
                    in_flight += 1
            if in_flight == 0 and path.pending() == 0:
                path.done = True
        if all(path.done for path in self.paths) and not queries:
            self._finish(now, None if not self.want_value else "not found")
        return queries

    def start(self, now: float) -> list[Candidate]:
        if not any(path.candidates for path in self.paths):
            self._finish(now, "no contacts")
            return []
        return self._next(now)

    def answered(
        self,
        candidate: Candidate,
        nodes: Sequence[Contact],
        record: AddressRecord | None,
        now: float,
    ) -> list[Candidate]:
        """`candidate` answered, naming `nodes` (and, for value lookups, maybe a record)."""
        if candidate.state != "pending":
            return []
        candidate.state = "answered"
        candidate.rtt = now - (candidate.sent_at or now)
        candidate.returned = len(nodes)
        if self.done:
            return []
        if record is not None and self.want_value:
            self.record, self.holder = record, candidate
            self._finish(now, None)
            return []
        self._add(candidate.path, nodes, candidate.depth + 1, candidate)
        return self._next(now)

    def failed(self, candidate: Candidate, now: float, state: str = "failed") -> list[Candidate]:
        """`candidate` did not answer in time (or answered as someone else: "rejected")."""
        if candidate.state != "pending":
            return []
        candidate.state = state
        candidate.rtt = now - (candidate.sent_at or now)
        return self._next(now)

    def expire(self, now: float) -> None:
        if not self.done and now >= self.deadline:
            self._finish(now, "timeout")

    def _finish(self, now: float, reason: str | None) -> None:
        self.finished_at = now
        self.reason = reason

    def closest(self) -> list[Contact]:
        """Contacts that answered, nearest to the target first, one per id, at most k."""
        seen: set[int] = set()
        answered = [c for c in self.sent if c.state == "answered"]
        answered.sort(key=_GAP)
        out = []
        for candidate in answered:
            if candidate.contact.id not in seen:
                seen.add(candidate.contact.id)
                out.append(candidate.contact)
        return out[: self.k]

    def result(self) -> LookupResult:
        answered = sorted((c for c in self.sent if c.state == "answered"), key=_GAP)
        end = self.holder or (answered[0] if answered else None)
        chain: list[Candidate] = []
        while end is not None:
            chain.append(end)
            end = end.via
        chain.reverse()
        found = self.record is not None if self.want_value else bool(answered)
        return LookupResult(
            target=self.target,
            origin=self.origin,
            want_value=self.want_value,
            found=found,
            record=self.record,
            holder=self.holder.contact if self.holder is not None else None,
            hops=len(chain),
            path=tuple(chain),
            closest=tuple(self.closest()),
            queried=tuple(self.sent),
            reason=None if found else (self.reason or "no answer"),
            paths=len(self.paths),
            seconds=(self.finished_at or self.started) - self.started,
        )
