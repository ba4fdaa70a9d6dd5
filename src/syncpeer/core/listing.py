"""What a friend says it holds: one entry of its GET /files listing, parsed and checked.

The sync engine plans downloads from these entries and holds the bytes that arrive to them
(`syncpeer.core.sync`); a node's own listing is made by `StoredFile.listing_json`.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncpeer.core.errors import InvalidName
from syncpeer.core.names import validate_name
from syncpeer.core.store import VersionKey, version_key


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
