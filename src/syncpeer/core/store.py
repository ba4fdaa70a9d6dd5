"""The store model: for each name, which envelope is current and which are kept as history.

Names form one namespace shared by all authors, like a shared folder. A version is identified by
its key (version, timestamp, author fingerprint, envelope SHA-256); of two competing envelopes
the one with the greater key, compared as a tuple, is current. Concurrent edits made on both
sides of a partition therefore resolve the same way on every node, and the loser is kept in
history, never dropped. A tombstone (a signed delete) is a version like any other.

This module only decides; `syncpeer.io.filestore` moves the bytes and then calls `commit`.
Times here are wall-clock seconds (the listing's Last-Modified), passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from syncpeer.core.envelope import Envelope
from syncpeer.core.mutants import NO_MUTANTS, Mutants

VersionKey = tuple[int, float, str, str]
"""(version, timestamp, author fingerprint, envelope sha256); the greater key wins."""


def version_key(version: int, timestamp: float, author: str, sha256: str) -> VersionKey:
    """The key a version is known and ordered by.

    The envelope hash is the last tie-break: two different envelopes an author signed with
    one version and timestamp (equivocation: showing different peers different content) are
    two versions, which every node fetches, keeps and orders the same way, instead of each
    node keeping whichever it happened to see first and never converging.
    """
    return (version, timestamp, author, sha256)


HISTORY_DIR = ".versions"
PARTIAL_DIR = ".partial"
SUFFIX = ".spe"


@dataclass(frozen=True)
class StoredFile:
    """What the store knows about one envelope it holds."""

    name: str
    author: str
    version: int
    timestamp: float
    size: int  # envelope bytes
    sha256: str  # of the envelope bytes
    public: bool
    recipients: tuple[str, ...]
    plain_size: int
    plain_sha256: str
    trace_id: str | None
    deleted: bool = False  # a tombstone: the name was deleted by `author`

    @property
    def key(self) -> VersionKey:
        return version_key(self.version, self.timestamp, self.author, self.sha256)

    def readable_by(self, fingerprint: str) -> bool:
        return self.public or fingerprint in self.recipients

    @classmethod
    def from_envelope(cls, envelope: Envelope, size: int, sha256: str) -> StoredFile:
        header = envelope.header
        return cls(
            name=header.name,
            author=header.author,
            version=header.version,
            timestamp=header.timestamp,
            size=size,
            sha256=sha256,
            public=header.public,
            recipients=envelope.recipient_fingerprints(),
            plain_size=header.size,
            plain_sha256=header.sha256,
            trace_id=header.trace_id,
            deleted=header.deleted,
        )

    def listing_json(self) -> dict[str, Any]:
        """The entry served by GET /files; `syncpeer.core.sync.ListingEntry` parses it."""
        return ({"deleted": True} if self.deleted else {}) | {
            "name": self.name,
            "author": self.author,
            "version": self.version,
            "timestamp": self.timestamp,
            "size": self.size,
            "sha256": self.sha256,
            "public": self.public,
            "recipients": list(self.recipients),
            "trace_id": self.trace_id,
        }


def current_filename(name: str) -> str:
    return name + SUFFIX


def history_filename(file: StoredFile) -> str:
    """Name inside .versions/; the envelope hash keeps two envelopes of one key apart."""
    return f"{file.name}.v{file.version}.{file.author[:8]}.{file.sha256[:8]}{SUFFIX}"


class Placement(Enum):
    CURRENT = "current"  # becomes the current version; the old current moves to history
    HISTORY = "history"  # older than the current one but not held yet: kept, so nothing is lost
    DUPLICATE = "duplicate"  # this key is already held


@dataclass(frozen=True)
class Decision:
    placement: Placement
    file: StoredFile
    displaced: StoredFile | None = None  # the current file that moves to history


class Store:
    """Current and historical envelopes by name, with a generation that counts listing changes.

    `wall` is the wall clock at creation (the listing's first Last-Modified); `mutants` are
    the deliberate bugs this store's decisions make (none by default).
    """

    def __init__(self, wall: float, mutants: Mutants = NO_MUTANTS) -> None:
        self.mutants = mutants
        self._current: dict[str, StoredFile] = {}
        self._history: dict[str, dict[VersionKey, StoredFile]] = {}
        self.generation = 0
        self.last_modified = wall

    def current(self, name: str) -> StoredFile | None:
        return self._current.get(name)

    def files(self, author: str | None = None) -> list[StoredFile]:
        """Current files sorted by name, optionally only those by `author`."""
        return [
            file
            for _, file in sorted(self._current.items())
            if author is None or file.author == author
        ]

    def history(self, name: str) -> list[StoredFile]:
        """Kept (non-current) versions of `name`, newest first."""
        kept = self._history.get(name, {})
        return [kept[key] for key in sorted(kept, reverse=True)]

    def holds(self, name: str, key: VersionKey) -> bool:
        current = self._current.get(name)
        key = self._known_as(key)
        return (current is not None and self._known_as(current.key) == key) or key in (
            self._history.get(name, {})
        )

    def _known_as(self, key: VersionKey) -> VersionKey:
        """The key the store files a version under: its version key, unless the
        `ignore-equivocation` mutant drops the envelope hash that tells equivocations apart."""
        return (*key[:3], "") if "ignore-equivocation" in self.mutants else key

    def next_version(self, name: str) -> int:
        """The version number a local publish of `name` gets: one above every version held."""
        versions = [key[0] for key in self._history.get(name, {})]
        if name in self._current:
            versions.append(self._current[name].version)
        return max(versions, default=0) + 1

    def decide(self, file: StoredFile) -> Decision:
        if self.holds(file.name, file.key):
            return Decision(Placement.DUPLICATE, file)
        current = self._current.get(file.name)
        if current is None or self._wins(file, current):
            return Decision(Placement.CURRENT, file, displaced=current)
        return Decision(Placement.HISTORY, file)

    def equivocation(self, file: StoredFile) -> StoredFile | None:
        """A held envelope the same author signed with the same name, version and timestamp
        as `file` but different bytes: proof the author showed peers different content."""
        held = [self._current.get(file.name), *self._history.get(file.name, {}).values()]
        return next(
            (
                other
                for other in held
                if other is not None
                and (other.version, other.timestamp, other.author)
                == (file.version, file.timestamp, file.author)
                and other.sha256 != file.sha256
            ),
            None,
        )

    def commit(self, decision: Decision, wall: float) -> None:
        """Record a decision whose bytes the caller has put in place (at wall-clock `wall`)."""
        file = decision.file
        if decision.placement is Placement.DUPLICATE:
            return
        if decision.placement is Placement.HISTORY:
            self._history.setdefault(file.name, {})[self._known_as(file.key)] = file
            return
        if self._current.get(file.name) != decision.displaced:
            raise RuntimeError(f"stale decision for {file.name!r}: the current file changed")
        if decision.displaced is not None:
            kept = self._history.setdefault(file.name, {})
            kept[self._known_as(decision.displaced.key)] = decision.displaced
        self._current[file.name] = file
        self.generation += 1
        self.last_modified = wall

    def _wins(self, file: StoredFile, current: StoredFile) -> bool:
        """The version rule: whether `file` replaces `current` (docs/syncpeer.md)."""
        if "accept-older" in self.mutants:
            return True
        if "delete-wins" in self.mutants and file.deleted:
            return True
        if "timestamp-wins" in self.mutants:
            return (file.timestamp, file.key) > (current.timestamp, current.key)
        return file.key > current.key
