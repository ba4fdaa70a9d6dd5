"""Protocol versions and v1.1's chunks, decided in the core: negotiation both ways, chunk
lists and the ranges a partial file still needs, and what the sync engine does with an
agreed version or with none. No sockets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from sync_world import FRIEND_1, World

from syncpeer.core import protocol
from syncpeer.core.chunks import CHUNK_SIZE, ChunkList
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.protocol import Agreed, Mismatch, Versions
from syncpeer.core.sync_events import Download, DownloadEnded, ListingReceived, ProtocolRefused

V10, V11, BOTH = Versions((protocol.V1_0,)), Versions((protocol.V1_1,)), protocol.ALL


@pytest.mark.parametrize(
    ("server", "offered", "expected"),
    [
        (BOTH, None, protocol.V1_0),  # a v1.0 poller sends no header
        (BOTH, "1.0", protocol.V1_0),
        (BOTH, "1.0, 1.1", protocol.V1_1),
        (V10, "1.0, 1.1", protocol.V1_0),
        (BOTH, "1.1, 2.7", protocol.V1_1),  # versions from the future are left out
    ],
)
def test_the_answering_node_picks_the_newest_common_version(
    server: Versions, offered: str | None, expected: str
) -> None:
    assert protocol.answer(server, protocol.parse_header(offered)) == Agreed(expected)


def test_no_common_version_is_a_mismatch_that_names_both_sides() -> None:
    refused = protocol.answer(V11, protocol.parse_header(None))
    assert isinstance(refused, Mismatch)
    assert refused.ours == ("1.1",) and refused.theirs == ("1.0",)
    assert "this node speaks 1.1, the peer speaks 1.0" in refused.message
    # The poller's side: an answer naming a version it does not speak (a v1.0 server
    # sends no header) is refused too.
    assert isinstance(protocol.accept(V11, protocol.parse_header(None)), Mismatch)
    assert protocol.accept(BOTH, protocol.parse_header(None)) == Agreed("1.0")


def test_versions_between_refuses_unknown_and_upside_down_ranges() -> None:
    assert Versions.between("1.0", "1.1") == BOTH
    with pytest.raises(ValueError, match=r"unknown protocol version '2\.0'"):
        Versions.between("1.0", "2.0")
    with pytest.raises(ValueError, match="newer than the highest"):
        Versions.between("1.1", "1.0")


def test_a_partial_file_needs_only_its_missing_and_damaged_chunks() -> None:
    data = bytes(range(256)) * (CHUNK_SIZE * 5 // 256) + b"tail"  # 6 chunks, the last short
    chunks = ChunkList.of(data)
    assert len(chunks.hashes) == 6 and chunks.span(5) == (5 * CHUNK_SIZE, len(data) - 1)
    assert chunks.plan(data) == []
    assert chunks.plan(b"") == [(0, len(data) - 1)], "nothing held: one request for all"
    damaged = bytearray(data[: 4 * CHUNK_SIZE + 10])  # cut off inside chunk 4
    damaged[CHUNK_SIZE + 7] ^= 0xFF  # and chunk 1 rotted on disk
    assert chunks.bad_chunks(bytes(damaged)) == [1, 4, 5]
    assert chunks.plan(bytes(damaged)) == [
        (CHUNK_SIZE, 2 * CHUNK_SIZE - 1),
        (4 * CHUNK_SIZE, len(data) - 1),  # neighbours 4 and 5: one range
    ]


def test_a_chunk_list_must_describe_the_listed_envelope() -> None:
    data = b"x" * (CHUNK_SIZE + 1)
    good = ChunkList.of(data).to_json()
    sha, size = hashlib.sha256(data).hexdigest(), len(data)
    assert ChunkList.from_json(good, sha, size) == ChunkList.of(data)
    bad_cases = {
        "not of the listed envelope": {**good, "size": size + 1},
        "chunk_size 7 is outside": {**good, "chunk_size": 7},
        "hex SHA-256": {**good, "chunks": ["zz"] * 2},
        "cannot make": {**good, "chunks": good["chunks"][:1]},
    }
    for message, body in bad_cases.items():
        with pytest.raises(ValueError, match=message):
            ChunkList.from_json(body, sha, size)


@pytest.fixture
def world(make_identity: Callable[[str], Identity], rng: RandomSource) -> World:
    return World(make_identity, rng)


def test_downloads_use_the_version_agreed_with_their_source(world: World) -> None:
    data = world.seal(1, to=[world.me])
    poll = world.start(FRIEND_1)[0]
    actions = world.feed(ListingReceived(poll, (world.entry(data),), None, protocol=protocol.V1_1))
    [download] = [a for a in actions if isinstance(a, Download)]
    assert download.protocol == protocol.V1_1
    assert world.engine.protocols() == {FRIEND_1: "1.1"}
    # v1.1 fills chunks anywhere: a complete partial file is complete, whatever arrived.
    world.running.remove(download)
    world.feed(DownloadEnded(download, 100, data))
    [done] = world.events("file_download_completed")
    assert done["protocol"] == "1.1" and world.store.holds("doc.txt", world.entry(data).key)


def test_a_protocol_mismatch_is_logged_once_and_stops_syncing_with_that_friend(
    world: World,
) -> None:
    data = world.seal(1, to=[world.me])
    poll = world.start(FRIEND_1)[0]
    world.answer(FRIEND_1, [world.entry(data)])  # a listing first: then the mismatch
    world.running.clear()
    message = "protocol version mismatch: this node speaks 1.1, the peer speaks 1.0; ..."
    for _ in range(3):
        poll = world.poll(FRIEND_1)
        world.polls.pop(FRIEND_1)
        world.feed(ProtocolRefused(poll, message))
    [logged] = [e for e in world.log if e.event == "protocol_mismatch"]
    assert logged.level == "error" and logged.fields["error"] == message
    assert logged.fields["friend"] == FRIEND_1
    assert world.engine.mismatches() == {FRIEND_1: message}
    assert world.engine.sources(world.entry(data)) == (), "no longer a source"
    assert world.events("friend_unreachable") == [], "a mismatch is not an outage"
    world.poll(FRIEND_1)
    world.answer(FRIEND_1, [])  # the friend now speaks a common version
    assert world.engine.mismatches() == {}
