"""Tombstones, equivocation, lying listings and the mutants, at the core level.

Mutants are values: each test builds the store or engine with the mutants it needs, and an
honest one beside it in the same process shows the difference."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sync_world import FRIEND_1, FRIEND_2, World

from syncpeer.core import envelope
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.mutants import MUTANTS, NO_MUTANTS, Mutants
from syncpeer.core.store import Placement, Store
from syncpeer.core.tombstone import seal_tombstone

LIAR, HONEST = FRIEND_1, FRIEND_2
WorldMaker = Callable[..., World]


@pytest.fixture
def make_world(make_identity: Callable[[str], Identity], rng: RandomSource) -> WorldMaker:
    def make(*mutants: str) -> World:
        world = World(make_identity, rng, mutants=Mutants.of(mutants))
        world.start(LIAR, HONEST)
        return world

    return make


@pytest.fixture
def world(make_world: WorldMaker) -> World:
    return make_world()


def take(store: Store, world: World, data: bytes) -> Placement:
    decision = store.decide(world.file(data))
    store.commit(decision, wall=1.0)
    return decision.placement


def test_tombstone_is_a_public_empty_version_that_wins_and_stays(world: World) -> None:
    take(world.store, world, world.seal(1))
    tombstone = seal_tombstone(
        world.author, name="doc.txt", version=3, timestamp=11.0, random=world.rng
    )
    assert world.file(tombstone).deleted
    assert take(world.store, world, tombstone) is Placement.CURRENT
    # Version 2 arriving after the delete (out of order, or replayed) does not resurrect it.
    assert take(world.store, world, world.seal(2)) is Placement.HISTORY
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
    world: World,
) -> None:
    first = world.seal(1, content=b"what A sees")
    second = world.seal(1, content=b"what C sees")
    other = Store(wall=0.0)
    for store, order in ((world.store, (first, second)), (other, (second, first))):
        for data in order:
            assert take(store, world, data) is not Placement.DUPLICATE
    mine, theirs = world.store.current("doc.txt"), other.current("doc.txt")
    assert mine is not None and theirs is not None and mine.sha256 == theirs.sha256
    assert world.store.equivocation(world.file(first)) == world.file(second)
    blind = Store(wall=0.0, mutants=Mutants.of(["ignore-equivocation"]))
    assert take(blind, world, first) is Placement.CURRENT
    assert take(blind, world, second) is Placement.DUPLICATE, "the mutant sees one version"
    assert blind.holds("doc.txt", world.file(second).key)


def test_a_lie_about_the_timestamp_blames_the_liar_not_the_genuine_bytes(world: World) -> None:
    """The bug this fixes: one peer listing a genuine envelope under a false timestamp got
    the envelope's bytes blacklisted, so no honest friend could ever deliver them."""
    data = world.seal(1)
    honest = world.entry(data)
    lie = dataclasses.replace(honest, timestamp=honest.timestamp + 3600)
    [download] = world.answer(LIAR, [lie])
    world.deliver(download, data)
    assert "does not match the listing" in world.events("file_rejected")[0]["reason"]
    assert world.engine.skip_reason(honest, HONEST) is None
    assert world.engine.skip_reason(lie, LIAR) == "bad_source"
    [download] = world.answer(HONEST, [honest])
    world.deliver(download, data)
    assert world.store.holds("doc.txt", honest.key)


def test_blame_envelope_mutant_brings_the_poisoning_back(make_world: WorldMaker) -> None:
    for world, poisoned in ((make_world(), None), (make_world("blame-envelope"), "rejected")):
        data = world.seal(1)
        honest = world.entry(data)
        [download] = world.answer(LIAR, [dataclasses.replace(honest, timestamp=1e9)])
        world.deliver(download, data)
        assert world.engine.skip_reason(honest, HONEST) == poisoned


def test_blamed_source_is_not_asked_again_but_others_are(world: World) -> None:
    entry = world.entry(world.seal(1))
    [download] = world.answer(LIAR, [entry])
    world.answer(HONEST, [entry])
    world.lie(download)
    assert world.engine.sources(entry) == (HONEST,)


def test_version_rule_mutants_change_the_decision(world: World) -> None:
    stores = {
        name: Store(wall=0.0, mutants=Mutants.of(name.split()))
        for name in ("", "timestamp-wins", "accept-older")
    }
    for store in stores.values():
        take(store, world, world.seal(2, timestamp=10.0))
    older_but_later_clock = world.file(world.seal(1, timestamp=99.0))
    older = world.file(world.seal(1, timestamp=1.0))
    placements = {
        name: (store.decide(older_but_later_clock).placement, store.decide(older).placement)
        for name, store in stores.items()
    }
    assert placements == {
        "": (Placement.HISTORY, Placement.HISTORY),
        "timestamp-wins": (Placement.CURRENT, Placement.HISTORY),
        "accept-older": (Placement.CURRENT, Placement.CURRENT),
    }


def test_refetch_held_mutant_plans_held_versions_again(make_world: WorldMaker) -> None:
    honest, mutant = make_world(), make_world("refetch-held")
    data = honest.seal(1)
    for world in (honest, mutant):
        take(world.store, world, data)
    assert honest.answer(HONEST, [honest.entry(data)]) == []
    assert len(mutant.answer(HONEST, [mutant.entry(data)])) == 1


def test_skip_signature_mutant_accepts_a_forged_envelope(world: World) -> None:
    forged = bytearray(world.seal(1, content=b"0123456789"))
    forged[-70] ^= 0xFF  # inside the body, just before the signature
    with pytest.raises(InvalidEnvelope, match="signature"):
        envelope.verify(bytes(forged))
    with pytest.raises(InvalidEnvelope, match="public body"):
        # The signature passes; the body hash still does not.
        envelope.verify(bytes(forged), Mutants.of(["skip-signature"]))


def test_mutants_are_a_checked_value() -> None:
    with pytest.raises(ValueError, match="no-such-bug"):
        Mutants.parse("skip-signature, no-such-bug")
    parsed = Mutants.parse(" skip-signature ,")
    assert parsed == Mutants.of(["skip-signature"]) and "skip-signature" in parsed
    assert "accept-older" not in parsed and not NO_MUTANTS and list(parsed) == ["skip-signature"]
    with pytest.raises(KeyError, match="skip-signatures"):
        assert "skip-signatures" in parsed  # a hook that misspells its mutant fails loudly
    assert set(Mutants.parse(",".join(MUTANTS))) == set(MUTANTS)
