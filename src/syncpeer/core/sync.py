"""The sync protocol as a state machine: listings in, fetches out; downloaded bytes in,
accept or reject out.

The driver polls every friend's GET /files and feeds the entries to `on_listing`, which returns
the envelopes to fetch (never one already held, already in flight, not meant for this node, or
known to be bad). When the bytes arrive, `check` verifies them against the listing and the
author's signature and asks the store where they belong. `release` ends a fetch, whatever its
outcome, so a failed one is planned again from the next listing that offers it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from syncpeer.core import envelope, mutants
from syncpeer.core.errors import InvalidEnvelope, InvalidName
from syncpeer.core.names import validate_name
from syncpeer.core.store import Decision, Store, StoredFile, VersionKey, version_key

MAX_ENVELOPE_BYTES = 256 << 20


@dataclass(frozen=True)
class ListingEntry:
    """One envelope a friend says it holds, as served by its GET /files."""

    name: str
    author: str
    version: int
    timestamp: float
    size: int
    sha256: str
    public: bool
    recipients: tuple[str, ...]
    trace_id: str | None = None

    @property
    def key(self) -> VersionKey:
        return version_key(self.version, self.timestamp, self.author, self.sha256)

    @property
    def fetch_id(self) -> tuple[str, VersionKey]:
        return (self.name, self.key)

    @classmethod
    def from_json(cls, data: object) -> ListingEntry:
        """Parse one listing entry; raise ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("listing entry must be an object")
        try:
            name = validate_name(data.get("name"))
        except InvalidName as error:
            raise ValueError(str(error)) from None
        author, sha256, public = data.get("author"), data.get("sha256"), data.get("public")
        version, size, timestamp = data.get("version"), data.get("size"), data.get("timestamp")
        recipients, trace_id = data.get("recipients"), data.get("trace_id")
        if not isinstance(author, str) or not isinstance(sha256, str):
            raise ValueError("author and sha256 must be strings")
        if not isinstance(version, int) or not isinstance(size, int):
            raise ValueError("version and size must be integers")
        if isinstance(version, bool) or isinstance(size, bool) or version < 1 or size < 0:
            raise ValueError("version and size must be non-negative integers")
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            raise ValueError("timestamp must be a number")
        if not isinstance(public, bool):
            raise ValueError("public must be a boolean")
        if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
            raise ValueError("recipients must be a list of fingerprints")
        if not (trace_id is None or isinstance(trace_id, str)):
            raise ValueError("trace_id must be a string or null")
        return cls(
            name=name,
            author=author,
            version=version,
            timestamp=float(timestamp),
            size=size,
            sha256=sha256,
            public=public,
            recipients=tuple(recipients),
            trace_id=trace_id,
        )


@dataclass(frozen=True)
class Fetch:
    """Download `entry`; `sources` are the friends that list these exact bytes, best first."""

    entry: ListingEntry
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    decision: Decision


@dataclass(frozen=True)
class Rejected:
    reason: str


class SyncEngine:
    """Decides what this node downloads from its friends, and whether to keep what arrived."""

    def __init__(self, me: str, store: Store) -> None:
        self.me = me
        self.store = store
        self._listings: dict[str, dict[str, ListingEntry]] = {}
        self._in_flight: set[tuple[str, VersionKey]] = set()
        self._bad_envelopes: set[str] = set()  # sha256 of bytes that failed verification
        self._bad_sources: set[tuple[str, str]] = set()  # (friend, sha256) it served wrongly

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def on_listing(self, friend: str, entries: Sequence[ListingEntry] | None) -> list[Fetch]:
        """Take a friend's listing (None: unchanged since last time) and return what to fetch.

        Returned fetches count as in flight until `release`d, so a second friend listing the
        same version does not start a second download.
        """
        if entries is not None:
            self._listings[friend] = {entry.name: entry for entry in entries}
        fetches = []
        candidates = self._listings.get(friend, {}).values()
        for entry in sorted(candidates, key=lambda entry: entry.key, reverse=True):
            if self.skip_reason(entry, friend) is None:
                self._in_flight.add(entry.fetch_id)
                fetches.append(Fetch(entry, self.sources(entry, first=friend)))
        return fetches

    def knows(self, friend: str) -> bool:
        """Whether a listing of `friend` is held (an unchanged-listing answer means something)."""
        return friend in self._listings

    def forget(self, friend: str) -> None:
        """Drop a friend's listing (it is unreachable or removed): it is no longer a source."""
        self._listings.pop(friend, None)

    def skip_reason(self, entry: ListingEntry, friend: str | None = None) -> str | None:
        """Why `entry` is not fetched, or None when it should be."""
        if not (entry.public or self.me in entry.recipients):
            return "not_for_me"
        if self.store.holds(entry.name, entry.key) and not mutants.active("refetch-held"):
            return "held"
        if entry.fetch_id in self._in_flight:
            return "in_flight"
        if entry.sha256 in self._bad_envelopes:
            return "rejected"
        if friend is not None and (friend, entry.sha256) in self._bad_sources:
            return "bad_source"
        if entry.size > MAX_ENVELOPE_BYTES:
            return "too_large"
        return None

    def sources(self, entry: ListingEntry, first: str | None = None) -> tuple[str, ...]:
        """Friends whose last listing offers exactly these envelope bytes."""
        friends = [
            friend
            for friend, listing in self._listings.items()
            if (offered := listing.get(entry.name)) is not None
            and offered.sha256 == entry.sha256
            and (friend, entry.sha256) not in self._bad_sources
        ]
        if first in friends:
            friends.remove(first)
            friends.insert(0, first)
        return tuple(friends)

    def check(self, entry: ListingEntry, source: str, data: bytes) -> Accepted | Rejected:
        """Verify downloaded bytes against the listing and the author's signature."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            self._bad_sources.add((source, entry.sha256))
            return Rejected(f"sha256 mismatch: listed {entry.sha256}, received {actual}")
        try:
            verified = envelope.verify(data)
        except InvalidEnvelope as error:
            self._bad_envelopes.add(actual)
            return Rejected(str(error))
        file = StoredFile.from_envelope(verified, len(data), actual)
        # The bytes are genuine (their signature verifies); what was wrong is what `source`
        # said about them. Blaming the bytes would let one lying peer stop every honest
        # friend from ever delivering this authentic version.
        if (file.name, file.key) != entry.fetch_id:
            self._blame_mismatch(source, actual)
            return Rejected("envelope header does not match the listing entry")
        if not file.readable_by(self.me):
            self._blame_mismatch(source, actual)
            return Rejected("envelope is not addressed to this node")
        return Accepted(self.store.decide(file))

    def blame(self, source: str, sha256: str) -> None:
        """`source` served something other than what it listed as `sha256` (e.g. another
        size): do not fetch those bytes from it again."""
        self._bad_sources.add((source, sha256))

    def _blame_mismatch(self, source: str, sha256: str) -> None:
        if mutants.active("blame-envelope"):
            self._bad_envelopes.add(sha256)
        else:
            self.blame(source, sha256)

    def release(self, entry: ListingEntry) -> None:
        """End a fetch: after a commit the store holds it; after a failure it may be planned
        again."""
        self._in_flight.discard(entry.fetch_id)
