"""Tombstones, equivocation, lying listings and the mutant switches, at the core level."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import pytest

from syncpeer.core import envelope, mutants
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.store import Placement, Store, StoredFile
from syncpeer.core.sync import Accepted, ListingEntry, Rejected, SyncEngine
from syncpeer.core.tombstone import seal_tombstone

LIAR, HONEST = "1" * 40, "2" * 40


class World:
    def __init__(self, make_identity: Callable[[str], Identity], rng: RandomSource) -> None:
        self.author, self.me = make_identity("author"), make_identity("me")
        self.rng = rng
        self.store = Store(now=0.0)
        self.engine = SyncEngine(self.me.fingerprint, self.store)

    def seal(self, version: int, content: bytes = b"", timestamp: float = 10.0) -> bytes:
        return envelope.seal(
            self.author,
            name="doc.txt",
            version=version,
            timestamp=timestamp,
            plaintext=content or b"v%d" % version,
            recipients=None,
            random=self.rng,
        )

    @staticmethod
    def file(data: bytes) -> StoredFile:
        return StoredFile.from_envelope(
            envelope.verify(data), len(data), hashlib.sha256(data).hexdigest()
        )

    def entry(self, data: bytes) -> ListingEntry:
        return ListingEntry.from_json(self.file(data).listing_json())

    def take(self, data: bytes) -> Placement:
        decision = self.store.decide(self.file(data))
        self.store.commit(decision, now=1.0)
        return decision.placement


@pytest.fixture
def world(make_identity: Callable[[str], Identity], rng: RandomSource) -> World:
    return World(make_identity, rng)


def test_tombstone_is_a_public_empty_version_that_wins_and_stays(world: World) -> None:
    world.take(world.seal(1))
    tombstone = seal_tombstone(
        world.author, name="doc.txt", version=3, timestamp=11.0, random=world.rng
    )
    assert world.file(tombstone).deleted
    assert world.take(tombstone) is Placement.CURRENT
    # Version 2 arriving after the delete (out of order, or replayed) does not resurrect it.
    assert world.take(world.seal(2)) is Placement.HISTORY
    current = world.store.current("doc.txt")
    assert current is not None and current.deleted and current.version == 3
    assert world.store.next_version("doc.txt") == 4
    assert world.file(tombstone).listing_json()["deleted"] is True
    assert "deleted" not in world.file(world.seal(4)).listing_json()


def test_a_tombstone_with_content_is_refused(world: World) -> None:
    forged = envelope.seal(
        world.author,
        name="doc.txt",
        version=2,
        timestamp=1.0,
        plaintext=b"not empty",
        recipients=None,
        random=world.rng,
        deleted=True,
    )
    with pytest.raises(InvalidEnvelope, match="tombstone"):
        envelope.verify(forged)


def test_equivocating_envelopes_are_both_kept_and_resolve_the_same_everywhere(
    world: World, make_identity: Callable[[str], Identity], rng: RandomSource
) -> None:
    first, second = world.seal(1, b"what A sees"), world.seal(1, b"what C sees")
    other = Store(now=0.0)
    for store, order in ((world.store, (first, second)), (other, (second, first))):
        for data in order:
            decision = store.decide(world.file(data))
            assert decision.placement is not Placement.DUPLICATE
            store.commit(decision, now=1.0)
    mine, theirs = world.store.current("doc.txt"), other.current("doc.txt")
    assert mine is not None and theirs is not None and mine.sha256 == theirs.sha256
    assert world.store.equivocation(world.file(first)) == world.file(second)
    with mutants.enabled("ignore-equivocation"):
        assert Store(now=0.0).decide(world.file(first)).placement is Placement.CURRENT
        assert world.store.decide(world.file(first)).placement is Placement.DUPLICATE


def test_a_lie_about_the_timestamp_blames_the_liar_not_the_genuine_bytes(world: World) -> None:
    """The bug this fixes: one peer listing a genuine envelope under a false timestamp got
    the envelope's bytes blacklisted, so no honest friend could ever deliver them."""
    data = world.seal(1)
    honest = world.entry(data)
    lie = dataclasses.replace(honest, timestamp=honest.timestamp + 3600)
    world.engine.on_listing(LIAR, [lie])
    outcome = world.engine.check(lie, LIAR, data)
    assert isinstance(outcome, Rejected) and "does not match the listing" in outcome.reason
    world.engine.release(lie)
    assert world.engine.skip_reason(honest, HONEST) is None
    assert world.engine.skip_reason(lie, LIAR) == "bad_source"
    assert isinstance(world.engine.check(honest, HONEST, data), Accepted)


def test_blame_envelope_mutant_brings_the_poisoning_back(world: World) -> None:
    data = world.seal(1)
    honest = world.entry(data)
    lie = dataclasses.replace(honest, timestamp=honest.timestamp + 3600)
    with mutants.enabled("blame-envelope"):
        world.engine.check(lie, LIAR, data)
    assert world.engine.skip_reason(honest, HONEST) == "rejected"


def test_blamed_source_is_not_asked_again_but_others_are(world: World) -> None:
    entry = world.entry(world.seal(1))
    world.engine.on_listing(LIAR, [entry])
    world.engine.on_listing(HONEST, [entry])
    world.engine.blame(LIAR, entry.sha256)
    world.engine.release(entry)
    assert world.engine.sources(entry) == (HONEST,)


def test_version_rule_mutants_change_the_decision(world: World) -> None:
    world.take(world.seal(2, timestamp=10.0))
    older_but_later_clock = world.file(world.seal(1, timestamp=99.0))
    assert world.store.decide(older_but_later_clock).placement is Placement.HISTORY
    with mutants.enabled("timestamp-wins"):
        assert world.store.decide(older_but_later_clock).placement is Placement.CURRENT
    with mutants.enabled("accept-older"):
        older = world.file(world.seal(1, timestamp=1.0))
        assert world.store.decide(older).placement is Placement.CURRENT


def test_refetch_held_mutant_plans_held_versions_again(world: World) -> None:
    data = world.seal(1)
    world.take(data)
    assert world.engine.on_listing(HONEST, [world.entry(data)]) == []
    with mutants.enabled("refetch-held"):
        assert len(world.engine.on_listing(HONEST, [world.entry(data)])) == 1


def test_skip_signature_mutant_accepts_a_forged_envelope(world: World) -> None:
    forged = bytearray(world.seal(1, b"0123456789"))
    forged[-70] ^= 0xFF  # inside the body, just before the signature
    with pytest.raises(InvalidEnvelope):
        envelope.verify(bytes(forged))
    with mutants.enabled("skip-signature"), pytest.raises(InvalidEnvelope, match="public body"):
        envelope.verify(bytes(forged))  # the signature passes; the body hash still does not


def test_unknown_mutants_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no-such-bug"):
        mutants.parse("skip-signature, no-such-bug")
    assert mutants.parse(" skip-signature ,") == {"skip-signature"}
    assert not mutants.current()
