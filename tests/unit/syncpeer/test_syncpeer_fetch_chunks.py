"""The v1.1 halves both drivers (aiohttp and the simulator) share, decided in the core: a
poll's agreed version read from its answer, the serving side's negotiation (a refusal
logged once per peer), a bounded chunk list, and a planned range's bytes checked chunk by
chunk however they are cut into pieces. No sockets."""

from __future__ import annotations

import json
import os

import pytest

from syncpeer.core import fetch, protocol, serve
from syncpeer.core.chunks import MIN_CHUNK_SIZE, ChunkList
from syncpeer.core.listing import ListingEntry
from syncpeer.core.protocol import Versions

V10, V11 = Versions((protocol.V1_0,)), Versions((protocol.V1_1,))
DATA = os.urandom(5 * MIN_CHUNK_SIZE + 100)  # six chunks, the last one short
CHUNKS = ChunkList.of(DATA, MIN_CHUNK_SIZE)


def _entry(data: bytes = DATA) -> ListingEntry:
    chunks = ChunkList.of(data)
    return ListingEntry("f.bin", "a" * 40, 1, 0.0, len(data), chunks.sha256, True, ())


def test_a_poll_agrees_on_the_version_its_answer_names() -> None:
    assert fetch.listing_agreed(200, "1.1", protocol.ALL) == protocol.V1_1
    assert fetch.listing_agreed(304, None, protocol.ALL) == protocol.V1_0  # a v1.0 friend
    with pytest.raises(
        fetch.ProtocolMismatch, match=r"this node speaks 1\.1, the peer speaks 1\.0"
    ):
        fetch.listing_agreed(200, None, V11)
    with pytest.raises(
        fetch.ProtocolMismatch, match=r"this node speaks 1\.0, the peer speaks 1\.1"
    ):
        fetch.listing_agreed(426, "1.1", V10)
    with pytest.raises(fetch.DownloadError, match="HTTP 500"):
        fetch.listing_agreed(500, "1.1", protocol.ALL)


def test_the_serving_side_refuses_with_426_and_logs_once_per_peer() -> None:
    negotiator = serve.Negotiator(V11)
    first = negotiator.poll(None, "10.0.0.1", "t1")
    again = negotiator.poll(None, "10.0.0.1", "t2")
    other = negotiator.poll(None, "10.0.0.2", "t3")
    assert isinstance(first, serve.Refused) and isinstance(again, serve.Refused)
    assert isinstance(other, serve.Refused)
    assert first.answer.status == 426 and first.answer.body["protocols"] == ["1.1"]
    assert first.answer.headers == {protocol.HEADER: "1.1"}
    assert first.log is not None and first.log.fields["peer"] == "10.0.0.1"
    assert again.log is None, "logged once, not every poll"
    assert other.log is not None, "each peer once"
    assert negotiator.poll("1.0, 1.1", "10.0.0.1", "t4") == protocol.V1_1
    after = negotiator.poll(None, "10.0.0.1", "t5")
    assert isinstance(after, serve.Refused) and after.log is not None, "logged again after"


def test_a_chunk_list_is_bounded_and_checked_against_the_listing() -> None:
    entry = _entry()
    listed = fetch.begin_chunk_list(entry, 200)
    text = json.dumps(ChunkList.of(DATA).to_json()).encode()
    for at in range(0, len(text), 7):
        listed.take(text[at : at + 7])
    assert listed.chunks() == ChunkList.of(DATA)
    with pytest.raises(fetch.DownloadError, match="HTTP 404"):
        fetch.begin_chunk_list(entry, 404)
    flood = fetch.begin_chunk_list(entry, 200)
    with pytest.raises(fetch.SourceLied, match="chunk list: more than"):
        flood.take(b" " * (flood.most + 1))
    other = fetch.begin_chunk_list(entry, 200)
    other.take(json.dumps(ChunkList.of(DATA[::-1]).to_json()).encode())
    with pytest.raises(fetch.SourceLied, match="not of the listed envelope"):
        other.chunks()


@pytest.mark.parametrize("piece", [1, 333, MIN_CHUNK_SIZE, 10_000])
def test_a_range_yields_each_whole_chunk_once_however_it_is_cut(piece: int) -> None:
    first, last = CHUNKS.span(1)[0], CHUNKS.span(5)[1]  # chunks 1..5, the short one last
    part = fetch.begin_range(
        CHUNKS, first, last, 206, f"bytes {first}-{last}/{len(DATA)}", last - first + 1
    )
    body = DATA[first : last + 1]
    got = []
    for at in range(0, len(body), piece):
        got += part.take(body[at : at + piece])
    part.end()
    assert [position for position, _ in got] == [CHUNKS.span(i)[0] for i in range(1, 6)]
    assert b"".join(data for _, data in got) == body
    assert part.done == len(body)


def test_a_range_keeps_the_chunks_before_a_bad_or_missing_one() -> None:
    first, last = CHUNKS.span(0)[0], CHUNKS.span(2)[1]
    head = f"bytes {first}-{last}/{len(DATA)}"
    part = fetch.begin_range(CHUNKS, first, last, 206, head, None)
    bad = bytearray(DATA[first : last + 1])
    bad[MIN_CHUNK_SIZE + 5] ^= 0xFF  # chunk 1
    assert [p for p, _ in part.take(bytes(bad[:MIN_CHUNK_SIZE]))] == [0]
    with pytest.raises(fetch.SourceLied, match="chunk 1 does not match"):
        part.take(bytes(bad[MIN_CHUNK_SIZE:]))
    cut = fetch.begin_range(CHUNKS, first, last, 206, head, None)
    assert len(cut.take(DATA[: MIN_CHUNK_SIZE + 10])) == 1
    with pytest.raises(fetch.DownloadError, match="chunk 1 cut off after 10 bytes"):
        cut.end()
    over = fetch.begin_range(CHUNKS, first, last, 206, head, None)
    with pytest.raises(fetch.SourceLied, match="more bytes"):
        over.take(DATA[: last + 2])


@pytest.mark.parametrize(
    ("status", "content_range", "length", "error"),
    [
        (200, None, None, fetch.DownloadError),  # the whole envelope, not the range
        (206, "bytes 0-99/6244", None, fetch.DownloadError),  # another range
        (206, f"bytes 0-1023/{len(DATA)}", 5, fetch.SourceLied),  # a length that lies
    ],
)
def test_a_range_answer_must_be_the_range_asked_for(
    status: int, content_range: str | None, length: int | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fetch.begin_range(CHUNKS, 0, MIN_CHUNK_SIZE - 1, status, content_range, length)
