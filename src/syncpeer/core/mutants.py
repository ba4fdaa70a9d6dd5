"""Deliberate bugs ("mutants") that peerlab switches on one at a time to prove its scenarios
and checkers catch them (`make mutants`, tests/mutants/).

Each mutant is one small, realistic mistake, consulted by a one-line hook where the correct
code makes its decision. Which mutants are on is a value, `Mutants`, handed to every object
with a hook (`Store`, `SyncEngine`, the HTTP client and API of a node), so two nodes in one
process can run different mutants. None is on unless named: `syncpeer run` reads the
comma-separated list from `SYNCPEER_MUTANTS` (`syncpeer.io.config`); the core never reads
the environment itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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
    "poll-at-fixed-rate": "an unreachable friend is polled every round, at a fixed rate, "
    "instead of less and less often",
    "no-read-deadline": "downloads have only a per-read timeout, so a friend that trickles a "
    "few bytes now and then (slowloris) holds a download slot forever",
    "delete-wins": "a tombstone becomes current whatever its version, so a late or replayed "
    "delete removes a file re-created after it",
    "wrong-distance": "the DHT measures closeness by the ids' numeric difference instead of "
    "their XOR",
    "leak-private-key": "a node logs its identity, private keys included, when it starts",
}


@dataclass(frozen=True)
class Mutants:
    """The mutants switched on for one node; `"name" in mutants` is what a hook asks."""

    names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(self.names - MUTANTS.keys())
        if unknown:
            raise ValueError(
                f"unknown mutant(s) {', '.join(unknown)}; known: {', '.join(sorted(MUTANTS))}"
            )

    @classmethod
    def of(cls, names: Iterable[str]) -> Mutants:
        return cls(frozenset(names))

    @classmethod
    def parse(cls, text: str | None) -> Mutants:
        """The mutants named in `text` ("a,b"); ValueError naming an unknown one."""
        return cls.of(part.strip() for part in (text or "").split(",") if part.strip())

    def __contains__(self, name: object) -> bool:
        # A hook that misspells its mutant would silently never fire: refuse it instead.
        if name not in MUTANTS:
            raise KeyError(f"no mutant named {name!r}")
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names))

    def __bool__(self) -> bool:
        return bool(self.names)


NO_MUTANTS = Mutants()
