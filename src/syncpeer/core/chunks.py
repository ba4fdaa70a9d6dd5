"""Protocol v1.1's chunked downloads: an envelope cut into fixed-size chunks, each with its
SHA-256, so a resumed or damaged partial file keeps the chunks that match and fetches only
the others.

The serving node answers GET /files/{name}/chunks with `chunk_list(envelope bytes)` as JSON;
the downloading node parses it against the listing (`ChunkList.from_json`), asks `plan`
which byte ranges of its partial file to fetch, and checks each arriving chunk with
`ChunkList.matches`. The whole envelope is still checked against its listed SHA-256 and
its signature at the end, so a lying chunk list costs a download, never a wrong file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 16 << 20


def chunk_hashes(data: bytes, chunk_bytes: int = CHUNK_SIZE) -> tuple[str, ...]:
    return tuple(
        hashlib.sha256(data[start : start + chunk_bytes]).hexdigest()
        for start in range(0, len(data), chunk_bytes)
    )


@dataclass(frozen=True)
class ChunkList:
    """The chunks of one envelope (by its SHA-256): their size and hashes, in order."""

    sha256: str
    size: int
    chunk_bytes: int
    hashes: tuple[str, ...]

    @classmethod
    def of(cls, data: bytes, chunk_bytes: int = CHUNK_SIZE) -> ChunkList:
        sha256 = hashlib.sha256(data).hexdigest()
        return cls(sha256, len(data), chunk_bytes, chunk_hashes(data, chunk_bytes))

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "chunk_size": self.chunk_bytes,
            "chunks": list(self.hashes),
        }

    @classmethod
    def from_json(cls, data: object, sha256: str, size: int) -> ChunkList:
        """A friend's chunk list for the envelope it listed as (`sha256`, `size`); ValueError
        naming what does not fit."""
        if not isinstance(data, dict):
            raise ValueError("chunk list must be an object")
        chunk_bytes, hashes = data.get("chunk_size"), data.get("chunks")
        if data.get("sha256") != sha256 or data.get("size") != size:
            raise ValueError("chunk list is not of the listed envelope (sha256 or size differ)")
        if not isinstance(chunk_bytes, int) or isinstance(chunk_bytes, bool):
            raise ValueError("chunk_size must be an integer")
        if not MIN_CHUNK_SIZE <= chunk_bytes <= MAX_CHUNK_SIZE:
            raise ValueError(
                f"chunk_size {chunk_bytes} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}"
            )
        if not isinstance(hashes, list) or not all(_is_sha256(h) for h in hashes):
            raise ValueError("chunks must be a list of hex SHA-256 digests")
        if len(hashes) != -(-size // chunk_bytes):
            raise ValueError(f"{len(hashes)} chunks cannot make {size} bytes of {chunk_bytes}")
        return cls(sha256, size, chunk_bytes, tuple(hashes))

    def span(self, index: int) -> tuple[int, int]:
        """Inclusive (first, last) byte positions of chunk `index`."""
        first = index * self.chunk_bytes
        return first, min(first + self.chunk_bytes, self.size) - 1

    def matches(self, index: int, data: bytes) -> bool:
        first, last = self.span(index)
        return (
            len(data) == last - first + 1 and hashlib.sha256(data).hexdigest() == self.hashes[index]
        )

    def bad_chunks(self, partial: bytes) -> list[int]:
        """The chunks `partial` (the partial file's bytes) lacks or holds wrongly."""
        bad = []
        for index in range(len(self.hashes)):
            first, last = self.span(index)
            if not self.matches(index, partial[first : last + 1]):
                bad.append(index)
        return bad

    def plan(self, partial: bytes) -> list[tuple[int, int]]:
        """The byte ranges (inclusive) to fetch: runs of neighbouring bad chunks, merged so
        that each run is one request."""
        ranges: list[tuple[int, int]] = []
        for index in self.bad_chunks(partial):
            first, last = self.span(index)
            if ranges and ranges[-1][1] + 1 == first:
                ranges[-1] = (ranges[-1][0], last)
            else:
                ranges.append((first, last))
        return ranges

    def chunks_in(self, first: int, last: int) -> range:
        """The chunks a planned range covers."""
        return range(first // self.chunk_bytes, last // self.chunk_bytes + 1)


def _is_sha256(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )
