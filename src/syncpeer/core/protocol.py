"""Protocol versions: which ones a node speaks, and how two nodes agree on one.

A node speaks every version from its lowest (`--require-protocol`) to its highest
(`--protocol`). A poll (GET /files) offers the poller's versions in the `Syncpeer-Protocol`
header; the answering node picks the highest version both speak and names it in the same
header of its answer, or, when they share none, refuses with 426 and the versions it speaks.
A node that sends no such header is a v1.0 node (v1.0 had none), so a v1.1 node keeps
speaking v1.0 to it.

  1.0  envelopes downloaded whole, resumed with a Range from where the partial file ends
  1.1  downloads by chunk: GET /files/{name}/chunks lists each chunk's SHA-256, and a
       resumed or corrupted download fetches only the chunks whose bytes do not match

Everything here is a decision on values: the HTTP side (`syncpeer.io`) reads and writes the
headers and logs what is decided.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

V1_0 = "1.0"
V1_1 = "1.1"
VERSIONS = (V1_0, V1_1)  # oldest first
HEADER = "Syncpeer-Protocol"
MISMATCH_STATUS = 426  # Upgrade Required
MISMATCH_CODE = "protocol_mismatch"


def check_version(text: str) -> str:
    """`text` when it names a version syncpeer knows; ValueError naming the known ones."""
    if text not in VERSIONS:
        raise ValueError(f"unknown protocol version {text!r}; known: {', '.join(VERSIONS)}")
    return text


@dataclass(frozen=True)
class Versions:
    """The versions one node speaks, oldest first."""

    speaks: tuple[str, ...]

    @classmethod
    def between(cls, lowest: str, highest: str) -> Versions:
        first, last = VERSIONS.index(check_version(lowest)), VERSIONS.index(check_version(highest))
        if first > last:
            raise ValueError(f"the required version {lowest} is newer than the highest, {highest}")
        return cls(VERSIONS[first : last + 1])

    @property
    def highest(self) -> str:
        return self.speaks[-1]

    @property
    def lowest(self) -> str:
        return self.speaks[0]

    def header(self) -> str:
        return ", ".join(self.speaks)

    def describe(self) -> str:
        return self.speaks[0] if len(self.speaks) == 1 else f"{self.lowest} to {self.highest}"


ALL = Versions(VERSIONS)


@dataclass(frozen=True)
class Agreed:
    version: str


@dataclass(frozen=True)
class Mismatch:
    """No version both sides speak: `message` says who needs what, for the logs of both."""

    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    message: str


@functools.lru_cache(maxsize=256)  # every poll parses one of a few headers
def parse_header(header: str | None) -> tuple[str, ...]:
    """The versions a `Syncpeer-Protocol` header names; none sent means a v1.0 peer.

    Versions this node does not know are left out: a newer peer may offer them.
    """
    if header is None:
        return (V1_0,)
    return tuple(v for v in (part.strip() for part in header.split(",")) if v in VERSIONS)


def answer(ours: Versions, offered: tuple[str, ...]) -> Agreed | Mismatch:
    """What a node answers a poll offering `offered`: the newest version both speak."""
    common = [version for version in ours.speaks if version in offered]
    if common:
        return Agreed(common[-1])
    return Mismatch(ours.speaks, offered, _message(ours.speaks, offered, "this node"))


def accept(ours: Versions, chosen: tuple[str, ...]) -> Agreed | Mismatch:
    """What a poller makes of the version the answer names (`parse_header` of it)."""
    if len(chosen) == 1 and chosen[0] in ours.speaks:
        return Agreed(chosen[0])
    return Mismatch(ours.speaks, chosen, _message(ours.speaks, chosen, "this node"))


def refused(ours: Versions, theirs: tuple[str, ...]) -> Mismatch:
    """What a poller makes of a 426: the versions the refusing node named are not its own."""
    return Mismatch(ours.speaks, theirs, _message(ours.speaks, theirs, "this node"))


def _message(ours: tuple[str, ...], theirs: tuple[str, ...], me: str) -> str:
    speaks = ", ".join(theirs) or "no version this node knows"
    return (
        f"protocol version mismatch: {me} speaks {', '.join(ours)}, the peer speaks {speaks}; "
        "no common version, so these two nodes cannot sync"
    )
