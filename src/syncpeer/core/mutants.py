"""Deliberate bugs ("mutants") that peerlab switches on one at a time to prove its scenarios
and checkers catch them (`make mutants`, tests/mutants/).

Each mutant is one small, realistic mistake, consulted by a one-line hook where the correct
code makes its decision. None is on unless named: a node reads the comma-separated list from
`SYNCPEER_MUTANTS` at start-up (`syncpeer.io.byzantine.configure`); tests use `enabled(...)`.
The set lives in this module because a node is one process (a forked child of peerlab's
launcher owns its own copy), and the core never reads the environment itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

MUTANTS: dict[str, str] = {
    "skip-signature": "envelopes are accepted without checking the author's signature",
    "accept-older": "a received envelope becomes current even when its version is older",
    "timestamp-wins": "the author's timestamp, not the version number, decides the current "
    "envelope (last-writer-wins on wall clocks)",
    "forget-tombstone": "a delete stays local: tombstones are never listed to peers",
    "rebroadcast": "a file received from a peer is published again as this node's own edit",
    "drop-range-offset": "a resumed download writes the bytes after the Range offset at the "
    "start of the partial file",
    "stale-etag": "the listing's ETag ignores the generation, so friends keep hearing 'unchanged'",
    "refetch-held": "the sync engine forgets to skip envelopes this node already holds",
    "ignore-equivocation": "two different envelopes an author signed with the same version "
    "and timestamp count as the same version",
    "blame-envelope": "bytes whose header does not match a lying listing are blacklisted "
    "for every source, not just the liar",
    "trust-size": "a source that serves more or fewer bytes than it listed is not blamed",
    "poll-in-lockstep": "a poll round waits for every friend's answer, so one frozen friend "
    "holds up syncing with all the others",
}

_active: frozenset[str] = frozenset()


def parse(text: str | None) -> frozenset[str]:
    """The mutants named in `text` ("a,b"); ValueError naming an unknown one."""
    names = frozenset(part.strip() for part in (text or "").split(",") if part.strip())
    unknown = sorted(names - MUTANTS.keys())
    if unknown:
        raise ValueError(
            f"unknown mutant(s) {', '.join(unknown)}; known: {', '.join(sorted(MUTANTS))}"
        )
    return names


def enable(names: Iterable[str]) -> None:
    """Switch on exactly `names` (an empty list switches every mutant off)."""
    global _active
    _active = parse(",".join(names))


def active(name: str) -> bool:
    """Whether mutant `name` is on; the hooks in the correct code ask this."""
    return name in _active


def current() -> frozenset[str]:
    return _active


@contextlib.contextmanager
def enabled(*names: str) -> Iterator[None]:
    """Switch `names` on for the duration of a `with` block (for unit tests)."""
    before = _active
    enable(names)
    try:
        yield
    finally:
        enable(before)
