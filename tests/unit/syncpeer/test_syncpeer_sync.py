"""The sync engine's decisions: what to fetch from listings, and what to keep of what arrived."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import pytest
from sync_world import FRIEND_1, FRIEND_2, World

from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.listing import ListingEntry
from syncpeer.core.store import Placement
from syncpeer.core.sync_events import Download, FriendRemoved, Keep


@pytest.fixture
def world(make_identity: Callable[[str], Identity], rng: RandomSource) -> World:
    world = World(make_identity, rng)
    world.start(FRIEND_1, FRIEND_2)
    return world


def test_fetches_files_for_me_and_public_ones_but_skips_others(world: World) -> None:
    for_me = world.entry(world.seal(1, to=[world.me]))
    public = dataclasses.replace(world.entry(world.seal(1, to=None)), name="public.txt")
    not_for_me = dataclasses.replace(world.entry(world.seal(1, to=[world.other])), name="x")
    downloads = world.answer(FRIEND_1, [for_me, public, not_for_me])
    assert {download.entry.name for download in downloads} == {"doc.txt", "public.txt"}
    assert {download.source for download in downloads} == {FRIEND_1}
    assert world.engine.skip_reason(not_for_me) == "not_for_me"


def test_in_flight_download_is_not_started_twice(world: World) -> None:
    entry = world.entry(world.seal(1, to=[world.me]))
    [first] = world.answer(FRIEND_1, [entry], etag='"a-1"')
    assert (first.source, first.offset) == (FRIEND_1, 0)
    assert world.answer(FRIEND_2, [entry], etag='"b-1"') == []
    assert world.sync(FRIEND_1, None) == []  # 304: same listing again
    assert world.engine.sources(entry, first=FRIEND_2) == (FRIEND_2, FRIEND_1)
    # The download failed: the other friend that lists it takes over at once.
    [again] = [a for a in world.break_off(first, have=0) if isinstance(a, Download)]
    assert again.source == FRIEND_2 and again.entry == entry
    assert world.sync(FRIEND_2, None) == [], "in flight again"


def test_held_version_is_not_fetched_again(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = world.entry(data)
    [download] = world.answer(FRIEND_1, [entry])
    [keep] = [a for a in world.deliver(download, data) if isinstance(a, Keep)]
    assert keep.decision.placement is Placement.CURRENT and keep.sha256 == entry.sha256
    assert world.answer(FRIEND_2, [entry]) == []
    assert world.engine.skip_reason(entry) == "held"


def test_newer_version_wins_and_older_unseen_one_is_kept(world: World) -> None:
    v1, v2, v3 = (world.seal(v, to=[world.me]) for v in (1, 2, 3))
    world.deliver(*world.answer(FRIEND_1, [world.entry(v1)]), v1)
    [download] = world.sync(FRIEND_1, [world.entry(v3)])
    assert download.entry.version == 3
    world.deliver(download, v3)
    # A lagging friend still lists v2, which this node never saw: kept, not made current.
    [download] = world.answer(FRIEND_2, [world.entry(v2)])
    world.deliver(download, v2)
    assert world.store.current("doc.txt").version == 3  # type: ignore[union-attr]
    assert [file.version for file in world.store.history("doc.txt")] == [2, 1]
    kept = world.events("file_version_kept")
    assert [(e["version"], e["reason"]) for e in kept] == [
        (1, "replaced"),
        (2, "older_than_current"),
    ]


def test_bytes_that_do_not_match_the_listing_are_rejected(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = world.entry(data)
    [download] = world.answer(FRIEND_1, [entry])
    world.answer(FRIEND_2, [entry])
    world.deliver(download, data[:-1] + b"\x00")
    [rejected] = world.events("file_rejected")
    assert "sha256 mismatch" in rejected["reason"] and rejected["source"] == FRIEND_1
    assert world.discarded == [entry.sha256]
    # Friend 1 served bad bytes, so only friend 2 remains a source for them.
    assert world.engine.sources(entry) == (FRIEND_2,)
    assert world.engine.skip_reason(entry, FRIEND_1) == "bad_source"


def test_tampered_envelope_is_rejected_and_never_fetched_again(world: World) -> None:
    tampered = bytearray(world.seal(1, to=[world.me]))
    tampered[-10] ^= 0xFF
    entry = dataclasses.replace(
        world.entry(world.seal(1, to=[world.me])),
        sha256=hashlib.sha256(tampered).hexdigest(),
    )
    [download] = world.answer(FRIEND_1, [entry])
    world.deliver(download, bytes(tampered))
    assert "signature" in world.events("file_rejected")[0]["reason"]
    assert world.answer(FRIEND_2, [entry]) == []
    assert world.engine.skip_reason(entry) == "rejected"


def test_listing_that_lies_about_the_version_is_rejected(world: World) -> None:
    data = world.seal(1, to=[world.me])
    [download] = world.answer(FRIEND_1, [dataclasses.replace(world.entry(data), version=5)])
    world.deliver(download, data)
    assert "does not match the listing" in world.events("file_rejected")[0]["reason"]
    assert world.store.current("doc.txt") is None


def test_envelope_not_addressed_to_me_is_rejected_even_if_listed_so(world: World) -> None:
    data = world.seal(1, to=[world.other])
    entry = dataclasses.replace(world.entry(data), recipients=(world.me.fingerprint,))
    [download] = world.answer(FRIEND_1, [entry])
    world.deliver(download, data)
    assert "not addressed" in world.events("file_rejected")[0]["reason"]


def test_removed_or_unreachable_friend_is_no_longer_a_source(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = world.entry(data)
    [download] = world.answer(FRIEND_1, [entry])
    world.answer(FRIEND_2, [entry])
    assert world.engine.knows(FRIEND_1) and world.engine.knows(FRIEND_2)
    world.feed(FriendRemoved(FRIEND_1))
    assert world.engine.sources(entry) == (FRIEND_2,)
    world.poll(FRIEND_2)
    world.fail(FRIEND_2)
    assert world.engine.sources(entry) == ()
    assert not world.engine.knows(FRIEND_1) and not world.engine.knows(FRIEND_2)
    assert world.engine.in_flight == 1, "the running download is not cancelled"
    world.deliver(download, data)
    assert world.store.holds("doc.txt", entry.key)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda entry: {**entry, "name": "../x"},
        lambda entry: {**entry, "version": 0},
        lambda entry: {**entry, "version": True},
        lambda entry: {**entry, "recipients": "everyone"},
        lambda entry: {**entry, "timestamp": "now"},
        lambda entry: "not an object",
    ],
)
def test_malformed_listing_entries_are_refused(world: World, mangle: Callable) -> None:
    good = world.entry(world.seal(1, to=[world.me]))
    payload = {**dataclasses.asdict(good), "recipients": list(good.recipients)}
    with pytest.raises(ValueError):
        ListingEntry.from_json(mangle(payload))
