"""The sync state machine: what to fetch from listings, and what to keep of what arrived."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import pytest

from syncpeer.core import envelope
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.store import Placement, Store, StoredFile
from syncpeer.core.sync import Accepted, ListingEntry, Rejected, SyncEngine

FRIEND_1, FRIEND_2 = "1" * 40, "2" * 40


class World:
    """An author, this node ("me"), and helpers to seal and list envelopes."""

    def __init__(self, make_identity: Callable[[str], Identity], rng: RandomSource) -> None:
        self.author, self.me, self.other = (make_identity(n) for n in ("author", "me", "other"))
        self.rng = rng
        self.store = Store(now=0.0)
        self.engine = SyncEngine(self.me.fingerprint, self.store)

    def seal(self, version: int, *, to: list[Identity] | None, timestamp: float = 10.0) -> bytes:
        return envelope.seal(
            self.author,
            name="doc.txt",
            version=version,
            timestamp=timestamp,
            plaintext=b"v%d" % version,
            recipients=None if to is None else [identity.card for identity in to],
            random=self.rng,
            trace_id=f"trace-{version}",
        )

    @staticmethod
    def entry(data: bytes) -> ListingEntry:
        verified = envelope.verify(data)
        file = StoredFile.from_envelope(verified, len(data), hashlib.sha256(data).hexdigest())
        return ListingEntry.from_json(file.listing_json())

    def accept(self, entry: ListingEntry, data: bytes, source: str = FRIEND_1) -> Placement:
        outcome = self.engine.check(entry, source, data)
        assert isinstance(outcome, Accepted), outcome
        self.store.commit(outcome.decision, now=1.0)
        self.engine.release(entry)
        return outcome.decision.placement


@pytest.fixture
def world(make_identity: Callable[[str], Identity], rng: RandomSource) -> World:
    return World(make_identity, rng)


def test_fetches_files_for_me_and_public_ones_but_skips_others(world: World) -> None:
    for_me = world.entry(world.seal(1, to=[world.me]))
    public = dataclasses.replace(world.entry(world.seal(1, to=None)), name="public.txt")
    not_for_me = dataclasses.replace(world.entry(world.seal(1, to=[world.other])), name="x")
    fetches = world.engine.on_listing(FRIEND_1, [for_me, public, not_for_me])
    assert {fetch.entry.name for fetch in fetches} == {"doc.txt", "public.txt"}
    assert world.engine.skip_reason(not_for_me) == "not_for_me"


def test_in_flight_download_is_not_started_twice(world: World) -> None:
    entry = world.entry(world.seal(1, to=[world.me]))
    first = world.engine.on_listing(FRIEND_1, [entry])
    assert [fetch.sources for fetch in first] == [(FRIEND_1,)]
    assert world.engine.on_listing(FRIEND_2, [entry]) == []
    assert world.engine.on_listing(FRIEND_1, None) == []  # 304: same listing again
    assert world.engine.sources(entry, first=FRIEND_2) == (FRIEND_2, FRIEND_1)
    world.engine.release(entry)  # the download failed: it may be planned again
    again = world.engine.on_listing(FRIEND_2, None)
    assert [fetch.sources for fetch in again] == [(FRIEND_2, FRIEND_1)]


def test_held_version_is_not_fetched_again(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = world.entry(data)
    world.engine.on_listing(FRIEND_1, [entry])
    assert world.accept(entry, data) is Placement.CURRENT
    assert world.engine.on_listing(FRIEND_2, [entry]) == []
    assert world.engine.skip_reason(entry) == "held"


def test_newer_version_wins_and_older_unseen_one_is_kept(world: World) -> None:
    v1, v2, v3 = (world.seal(v, to=[world.me]) for v in (1, 2, 3))
    world.engine.on_listing(FRIEND_1, [world.entry(v1)])
    world.accept(world.entry(v1), v1)
    [fetch] = world.engine.on_listing(FRIEND_1, [world.entry(v3)])
    assert fetch.entry.version == 3
    assert world.accept(fetch.entry, v3) is Placement.CURRENT
    # A lagging friend still lists v2, which this node never saw: kept, not made current.
    [fetch] = world.engine.on_listing(FRIEND_2, [world.entry(v2)])
    assert world.accept(fetch.entry, v2) is Placement.HISTORY
    assert world.store.current("doc.txt").version == 3  # type: ignore[union-attr]
    assert [file.version for file in world.store.history("doc.txt")] == [2, 1]


def test_bytes_that_do_not_match_the_listing_are_rejected(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = world.entry(data)
    world.engine.on_listing(FRIEND_1, [entry])
    world.engine.on_listing(FRIEND_2, [entry])
    outcome = world.engine.check(entry, FRIEND_1, data[:-1] + b"\x00")
    assert isinstance(outcome, Rejected) and "sha256 mismatch" in outcome.reason
    world.engine.release(entry)
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
    world.engine.on_listing(FRIEND_1, [entry])
    outcome = world.engine.check(entry, FRIEND_1, bytes(tampered))
    assert isinstance(outcome, Rejected) and "signature" in outcome.reason
    world.engine.release(entry)
    assert world.engine.on_listing(FRIEND_2, [entry]) == []
    assert world.engine.skip_reason(entry) == "rejected"


def test_listing_that_lies_about_the_version_is_rejected(world: World) -> None:
    data = world.seal(1, to=[world.me])
    entry = dataclasses.replace(world.entry(data), version=5)
    outcome = world.engine.check(entry, FRIEND_1, data)
    assert isinstance(outcome, Rejected) and "does not match the listing" in outcome.reason


def test_envelope_not_addressed_to_me_is_rejected_even_if_listed_so(world: World) -> None:
    data = world.seal(1, to=[world.other])
    entry = dataclasses.replace(world.entry(data), recipients=(world.me.fingerprint,))
    assert world.engine.on_listing(FRIEND_1, [entry]) != []
    outcome = world.engine.check(entry, FRIEND_1, data)
    assert isinstance(outcome, Rejected) and "not addressed" in outcome.reason


def test_forgotten_friend_is_no_longer_a_source(world: World) -> None:
    entry = world.entry(world.seal(1, to=[world.me]))
    world.engine.on_listing(FRIEND_1, [entry])
    assert world.engine.knows(FRIEND_1)
    world.engine.forget(FRIEND_1)
    assert world.engine.sources(entry) == ()
    assert not world.engine.knows(FRIEND_1)


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
