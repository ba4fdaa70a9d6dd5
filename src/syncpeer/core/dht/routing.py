"""The routing table: 160 k-buckets by XOR distance, each with a replacement cache.

Bucket i holds contacts at a distance in [2**i, 2**(i+1)) from this node, least recently
seen first. Kademlia's rule keeps old contacts that still answer: when a contact arrives for
a full bucket it waits in the bucket's replacement cache, and the bucket's least recently
seen contact is pinged if it has not been heard from for `stale_after` seconds; only if that
ping (or any other RPC to it) goes unanswered is it dropped and the newest replacement moved
in. Contacts enter the table only by sending a verified message themselves, never by being
named in someone else's answer, so nobody can put a contact in another node's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from syncpeer.core.dht.ids import ID_BITS, Metric, bucket_index, distance, id_hex
from syncpeer.core.dht.messages import Contact


@dataclass(slots=True)
class TableEntry:
    contact: Contact
    last_seen: float
    failures: int = 0


@dataclass(slots=True)
class Bucket:
    """A k-bucket. Most of a table's 160 buckets stay empty for good (a network of n nodes
    fills about log2(n) of them), so a bucket is one small object until a contact arrives:
    its lists are empty tuples, made lists by the table's first write (`_lists`)."""

    entries: list[TableEntry] | tuple[()] = ()  # least recently seen first
    replacements: list[TableEntry] | tuple[()] = ()  # most recently seen last
    # The last lookup into this bucket's range, or answer from a contact in it: a refresh is
    # due `refresh_interval` after that.
    touched: float = 0.0
    checking: int | None = None  # id of the stale head being pinged


class RoutingTable:
    def __init__(
        self,
        own_id: int,
        k: int = 20,
        stale_after: float = 60.0,
        max_failures: int = 3,
        metric: Metric = distance,
    ) -> None:
        self.own_id = own_id
        self.metric = metric
        self.k = k
        self.stale_after = stale_after
        self.max_failures = max_failures
        self.buckets = [Bucket() for _ in range(ID_BITS)]
        self._size = 0
        self._touches = 0
        self._nearest: int | None = None  # the nearest non-empty bucket (None: no contacts)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, node_id: int) -> bool:
        return self.get(node_id) is not None

    def get(self, node_id: int) -> Contact | None:
        if node_id == self.own_id:
            return None
        for entry in self.buckets[bucket_index(self.own_id, node_id)].entries:
            if entry.contact.id == node_id:
                return entry.contact
        return None

    def contacts(self) -> list[Contact]:
        return [entry.contact for bucket in self.buckets for entry in bucket.entries]

    def seen(self, contact: Contact, now: float) -> Contact | None:
        """`contact` sent a verified message: add it or move it to the tail of its bucket.

        Returns the bucket's stale head when the bucket is full and that head should be
        pinged (the caller reports the outcome with `seen` or `failed`).
        """
        if contact.id == self.own_id:
            return None
        bucket = self.buckets[bucket_index(self.own_id, contact.id)]
        entries = bucket.entries
        for position, entry in enumerate(entries):
            if entry.contact.id == contact.id:
                assert isinstance(entries, list)  # it has an entry
                del entries[position]
                entries.append(TableEntry(contact, now))
                if bucket.checking == contact.id:
                    bucket.checking = None
                return None
        if bucket.replacements:
            bucket.replacements = [e for e in bucket.replacements if e.contact.id != contact.id]
        if len(entries) < self.k:
            _lists(bucket)[0].append(TableEntry(contact, now))
            self._size += 1
            index = bucket_index(self.own_id, contact.id)
            if self._nearest is None or index < self._nearest:
                self._nearest = index
            return None
        entries, replacements = _lists(bucket)
        replacements.append(TableEntry(contact, now))
        del replacements[: -self.k]
        head = entries[0]
        if bucket.checking is None and now - head.last_seen >= self.stale_after:
            bucket.checking = head.contact.id
            return head.contact
        return None

    def failed(self, node_id: int) -> bool:
        """An RPC to `node_id` went unanswered; True when that dropped it from the table.

        A contact is dropped at once when a replacement is waiting, else after
        `max_failures` failures in a row (a lone lost datagram does not empty a bucket).
        """
        if node_id == self.own_id:
            return False
        bucket = self.buckets[bucket_index(self.own_id, node_id)]
        if bucket.checking == node_id:
            bucket.checking = None
        for position, entry in enumerate(bucket.entries):
            if entry.contact.id == node_id:
                entry.failures += 1
                if bucket.replacements or entry.failures >= self.max_failures:
                    entries, replacements = _lists(bucket)
                    del entries[position]
                    self._size -= 1
                    if replacements:
                        entries.append(replacements.pop())
                        self._size += 1
                    elif not entries:
                        self._emptied(bucket_index(self.own_id, node_id))
                    return True
                return False
        if bucket.replacements:
            bucket.replacements = [e for e in bucket.replacements if e.contact.id != node_id]
        return False

    def _emptied(self, index: int) -> None:
        """Bucket `index` lost its last contact: the nearest non-empty one may be farther."""
        if index == self._nearest:
            found = (i for i in range(index + 1, ID_BITS) if self.buckets[i].entries)
            self._nearest = next(found, None)

    def closest(self, target: int, count: int, exclude: int | None = None) -> list[Contact]:
        """The `count` contacts nearest to `target` by XOR distance (by the table's metric)."""
        if self.metric is not distance or target == self.own_id:
            contacts = [c for c in self.contacts() if c.id != exclude]
            contacts.sort(key=lambda contact: self.metric(contact.id, target))
            return contacts[:count]
        # By XOR the buckets are bands of distance to `target`: the bucket of its own range
        # holds the nearest (below 2**i), the buckets under it the next (all in
        # [2**i, 2**(i+1))), and each bucket above it a band of its own, farther each time.
        # Sorting only the bands `count` needs gives what sorting them all gives (no two
        # contacts are at the same distance).
        index = bucket_index(self.own_id, target)
        buckets = self.buckets
        found = _by_distance(buckets[index].entries, target, exclude)
        if len(found) < count and self._nearest is not None:
            # Each bucket j under i is a band of its own too: its contacts' distance to
            # `target` is the gap (own id XOR target) with bit j flipped and only lower bits
            # changed. Where the gap has bit j set, flipping it brings them nearer than
            # every bucket under j; where not, farther. So: the buckets whose bit is set,
            # from the top down, then the others from the bottom up.
            gap = self.own_id ^ target
            below = range(self._nearest, index)
            order = [j for j in reversed(below) if gap >> j & 1]
            order += [j for j in below if not gap >> j & 1]
            for j in order:
                if len(found) >= count:
                    break
                found += _by_distance(buckets[j].entries, target, exclude)
        for bucket in buckets[index + 1 :]:
            if len(found) >= count:
                break
            found += _by_distance(bucket.entries, target, exclude)
        return found[:count]

    def refresh_seeds(self, index: int, target: int) -> list[Contact]:
        """Whom a lookup refreshing bucket `index` (for `target`, an id in its range) asks.

        The bucket's own contacts when it has any. Otherwise the contacts of the farther
        buckets: by XOR the contacts of the nearer buckets look closer to the target, but
        they share our view of the network, and when none of them knows that range either
        (nodes that all joined at once form such islands) asking them leads nowhere. A
        farther contact sees the target's range and ours as one bucket, so it names nodes
        in either.
        """
        own = [entry.contact for entry in self.buckets[index].entries]
        if own:
            return own
        farther = [entry.contact for b in self.buckets[index + 1 :] for entry in b.entries]
        farther.sort(key=lambda contact: self.metric(contact.id, target))
        return farther[: self.k] or self.closest(target, self.k)

    def touch(self, target: int, now: float) -> None:
        """A lookup for `target` ran, or `target` answered us: its bucket needs no refresh
        for a while."""
        if target != self.own_id:
            self.buckets[bucket_index(self.own_id, target)].touched = now
            self._touches += 1

    def touch_bucket(self, index: int, now: float) -> None:
        self.buckets[index].touched = now
        self._touches += 1

    def touch_all(self, now: float) -> None:
        for bucket in self.buckets:
            bucket.touched = now
        self._touches += 1

    def due_for_refresh(self, now: float, interval: float) -> list[int]:
        """Buckets from the nearest non-empty one outwards not looked into for `interval`.

        Buckets nearer than any known contact are expected to be empty (there are not that
        many nodes), so refreshing them would only cost lookups.
        """
        nearest = self._nearest
        if nearest is None:
            return []
        # `touched + interval`, as next_refresh computes it: `now - touched >= interval`
        # can be false at the very time next_refresh names (rounding), and a driver woken
        # then would find nothing due and be woken again at once, forever.
        return [
            index
            for index in range(nearest, ID_BITS)
            if self.buckets[index].touched + interval <= now
        ]

    def next_refresh(self, interval: float) -> float | None:
        """When the next bucket `due_for_refresh` considers falls due."""
        nearest = self._nearest
        if nearest is None:
            return None
        return min(bucket.touched for bucket in self.buckets[nearest:]) + interval

    def refresh_key(self) -> tuple[int, ...]:
        """Changes whenever `next_refresh` may: lets a caller keep its answer meanwhile."""
        return (self._touches, -1 if self._nearest is None else self._nearest)

    def to_json(self, now: float) -> dict[str, Any]:
        def entry_json(entry: TableEntry) -> dict[str, Any]:
            return {
                "id": id_hex(entry.contact.id),
                "address": entry.contact.address,
                "last_seen_s": round(now - entry.last_seen, 3),
                "failures": entry.failures,
            }

        return {
            "id": id_hex(self.own_id),
            "k": self.k,
            "contacts": self._size,
            "buckets": [
                {
                    "index": index,
                    "contacts": [entry_json(entry) for entry in bucket.entries],
                    "replacements": [entry_json(entry) for entry in bucket.replacements],
                }
                for index, bucket in enumerate(self.buckets)
                if bucket.entries or bucket.replacements
            ],
        }


def _lists(bucket: Bucket) -> tuple[list[TableEntry], list[TableEntry]]:
    """`bucket`'s entries and replacements as lists to write to (until its first contact
    they are empty tuples)."""
    entries, replacements = bucket.entries, bucket.replacements
    if not isinstance(entries, list):
        entries = bucket.entries = []
    if not isinstance(replacements, list):
        replacements = bucket.replacements = []
    return entries, replacements


def _by_distance(entries: Sequence[TableEntry], target: int, exclude: int | None) -> list[Contact]:
    """The contacts of `entries` (but `exclude`) by XOR distance to `target`, nearest first."""
    near = [entry.contact for entry in entries if entry.contact.id != exclude]
    near.sort(key=lambda contact: contact.id ^ target)
    return near
