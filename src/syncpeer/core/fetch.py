"""The client side of the sync protocol, sans-IO: what a friend's answers mean.

A driver (`syncpeer.io.client` over aiohttp, or a simulator) sends the requests and hands
the answers' statuses, headers and bytes to these functions, which say what was listed,
which protocol version the two nodes agreed on (`syncpeer.core.protocol`), where a
download's bytes go, and when an answer is a friend's lie rather than a network accident.
A v1.0 download appends from where the partial file ends (`begin_download`); a v1.1 one
reads the friend's chunk list (`read_chunk_list`, bounded in size) and fetches only the
chunks that do not match it (`ChunkRange`). The mutants of the fetching side (`trust-size`,
`drop-range-offset`) are decided here, so every driver has them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from syncpeer.core import protocol
from syncpeer.core.chunks import MIN_CHUNK_SIZE, ChunkList
from syncpeer.core.listing import ListingEntry
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import Mutants
from syncpeer.core.protocol import Mismatch, Versions
from syncpeer.core.sync_events import Download

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(Exception):
    """A request failed; a download's partial file is kept when it can be resumed."""


class ProtocolMismatch(Exception):
    """The friend and this node share no protocol version (either side found it)."""


class Stalled(DownloadError):
    """The friend answered, then sent too little for too long (a slowloris): the download
    gives up, keeping what arrived, so another friend can send the rest."""


class SourceLied(DownloadError):
    """The friend answered with another number of bytes than its listing said: not a network
    accident (a cut-off body has no such header), so the friend is not asked again."""


@dataclass
class Listing:
    """A friend's GET /files answer; `entries` is None when unchanged (304)."""

    entries: list[ListingEntry] | None
    etag: str | None
    invalid: list[str] = field(default_factory=list)  # why entries were skipped
    protocol: str = protocol.V1_0  # the version agreed on with the friend


FROM_HEADER = "X-Syncpeer-From"  # a poll's sender names itself (`FriendHeard`)


def listing_headers(
    etag: str | None, trace_id: str, versions: Versions, me: str | None = None
) -> dict[str, str]:
    """The headers of a poll: the trace, the protocol versions offered, the ETag of the
    last answer as If-None-Match, and the poller's fingerprint `me` (its friend then knows
    it is up: `syncpeer.core.sync_events.FriendHeard`)."""
    headers = {"X-Trace-Id": trace_id, protocol.HEADER: versions.header()}
    if etag:
        headers["If-None-Match"] = etag
    if me:
        headers[FROM_HEADER] = me
    return headers


def listing_agreed(status: int, version_header: str | None, versions: Versions) -> str:
    """The protocol version a poll's answer agreed on (its `Syncpeer-Protocol` header);
    ProtocolMismatch when there is none (a 426, or a version this node does not speak),
    DownloadError when the answer is neither 200 nor 304."""
    theirs = protocol.parse_header(version_header)
    if status == protocol.MISMATCH_STATUS:
        # Said from this node's side: the friend's own message says "this node" of it.
        raise ProtocolMismatch(protocol.refused(versions, theirs).message)
    if status not in (200, 304):
        raise DownloadError(f"GET /files answered HTTP {status}")
    agreed = protocol.accept(versions, theirs)
    if isinstance(agreed, Mismatch):
        raise ProtocolMismatch(agreed.message)
    return agreed.version


def read_listing(
    status: int, etag: str | None, sent_etag: str | None, body: Any, version: str
) -> Listing:
    """A poll's answer (`body`: the parsed JSON of a 200; `version`: what `listing_agreed`
    said of it); DownloadError when unusable."""
    if status == 304:
        return Listing(None, etag or sent_etag, protocol=version)
    if status != 200:
        raise DownloadError(f"GET /files answered HTTP {status}")
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, list):
        raise DownloadError("GET /files answer has no 'files' list")
    entries, invalid = [], []
    for item in files:
        try:
            entries.append(ListingEntry.from_json(item))
        except ValueError as problem:
            invalid.append(str(problem))
    return Listing(entries, etag, invalid, version)


def download_headers(entry: ListingEntry, offset: int, trace_id: str) -> dict[str, str]:
    """If-Match pins the exact envelope (a friend whose current version changed since its
    listing answers 412 instead of other bytes); Range asks for the rest of a partial file."""
    headers = {"If-Match": f'"{entry.sha256}"', "X-Trace-Id": trace_id}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return headers


@dataclass
class Receiving:
    """A download whose answer has begun: where its bytes go and how many came."""

    entry: ListingEntry
    offset: int  # where the answer's first byte belongs in the envelope
    write_at: int  # where the driver writes it in the partial file (cut to `offset` first)
    honest: bool  # whether a length that contradicts the listing is a lie (no mutant)
    received: int = 0

    def take(self, length: int) -> None:
        """`length` more bytes arrived; SourceLied (DownloadError under `trust-size`) when
        they go past the size the listing gave."""
        if self.offset + self.received + length > self.entry.size:
            lie = SourceLied if self.honest else DownloadError
            raise lie("friend sent more bytes than its listing says")
        self.received += length


def begin_download(
    entry: ListingEntry,
    offset: int,
    status: int,
    content_range: str | None,
    content_length: int | None,
    mutants: Mutants,
) -> Receiving:
    """The head of a download's answer: what to do with the bytes that follow.

    A 206 must start at the requested offset; a 200 means the friend ignored the Range
    (start over); 416 drops the partial file (the driver deletes it on this DownloadError);
    a declared length that contradicts the listing is SourceLied.
    """
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(content_range or "")
        if match is None or int(match.group(1)) != offset:
            raise DownloadError("206 answer does not start at the requested offset")
    elif status == 200:
        offset = 0
    elif status == 416:
        raise DownloadError("range not satisfiable; partial file dropped")
    else:
        raise DownloadError(f"GET /files/{entry.name} answered HTTP {status}")
    honest = "trust-size" not in mutants
    if honest and content_length is not None and content_length != entry.size - offset:
        raise SourceLied(
            f"answer is {content_length} bytes from offset {offset}, but the listing says the "
            f"envelope is {entry.size} bytes"
        )
    write_at = 0 if "drop-range-offset" in mutants else offset
    return Receiving(entry, offset, write_at, honest)


# ------------------------------------------------------------------ v1.1: by chunk


def chunk_list_path(name: str) -> str:
    return f"/files/{name}/chunks"


@dataclass
class ChunkListReceiving:
    """A v1.1 chunk list whose answer has begun. Bounded: more bytes than the longest
    honest list (the smallest chunks) and some room is a lie, however slowly it comes."""

    entry: ListingEntry
    body: bytearray = field(default_factory=bytearray)

    @property
    def most(self) -> int:
        return 1024 + 80 * (self.entry.size // MIN_CHUNK_SIZE + 1)

    @property
    def received(self) -> int:
        return len(self.body)

    def take(self, piece: bytes) -> None:
        self.body += piece
        if len(self.body) > self.most:
            raise SourceLied(f"chunk list: more than {self.most} bytes")

    def chunks(self) -> ChunkList:
        """The whole list, checked against the listing; SourceLied when it does not fit."""
        try:
            return ChunkList.from_json(json.loads(self.body), self.entry.sha256, self.entry.size)
        except ValueError as problem:  # json's errors are ValueErrors too
            raise SourceLied(f"chunk list: {problem}") from None


def begin_chunk_list(entry: ListingEntry, status: int) -> ChunkListReceiving:
    """The head of a GET /files/{name}/chunks answer (sent with `download_headers` at
    offset 0: If-Match pins the envelope); DownloadError unless it is a 200."""
    if status != 200:
        raise DownloadError(f"GET {chunk_list_path(entry.name)} answered HTTP {status}")
    return ChunkListReceiving(entry)


@dataclass
class Fetched:
    """What a download got: the bytes received, and for a chunked one what it found."""

    received: int
    chunks: int = 0  # v1.1: chunks in the envelope
    refetched: int = 0  # v1.1: chunks fetched (missing or not matching their hash)


def range_headers(entry: ListingEntry, first: int, last: int, trace_id: str) -> dict[str, str]:
    """A planned range of chunks (`ChunkList.plan`), pinned to the listed envelope."""
    return download_headers(entry, 0, trace_id) | {"Range": f"bytes={first}-{last}"}


@dataclass
class ChunkRange:
    """The answer to one planned range: its bytes cut into chunks, each checked against the
    list as it completes, so a download cut off later keeps every whole chunk it got."""

    chunks: ChunkList
    first: int
    last: int
    done: int = 0  # bytes of the range in whole, checked chunks
    _pending: bytearray = field(default_factory=bytearray)

    def take(self, piece: bytes) -> list[tuple[int, bytes]]:
        """`piece` arrived: the chunks it completed, as (position in the envelope, bytes);
        SourceLied when one does not match the friend's list or the range overflows."""
        self._pending += piece
        if self.done + len(self._pending) > self.last - self.first + 1:
            raise SourceLied(f"range {self.first}-{self.last} answered with more bytes")
        complete: list[tuple[int, bytes]] = []
        while True:
            start = self.first + self.done
            index = start // self.chunks.chunk_bytes
            end = self.chunks.span(index)[1]
            if len(self._pending) < end - start + 1:
                return complete
            data = bytes(self._pending[: end - start + 1])
            del self._pending[: end - start + 1]
            if not self.chunks.matches(index, data):
                raise SourceLied(f"chunk {index} does not match the friend's list")
            complete.append((start, data))
            self.done += len(data)
            if start + len(data) > self.last:
                return complete

    def end(self) -> None:
        """The answer ended: DownloadError when it stopped short of the range."""
        if self.first + self.done <= self.last:
            index = (self.first + self.done) // self.chunks.chunk_bytes
            raise DownloadError(f"chunk {index} cut off after {len(self._pending)} bytes")


def begin_range(
    chunks: ChunkList,
    first: int,
    last: int,
    status: int,
    content_range: str | None,
    content_length: int | None,
) -> ChunkRange:
    """The head of a planned range's answer: a 206 of exactly that range, else DownloadError
    (SourceLied when its declared length contradicts it)."""
    if status != 206:
        raise DownloadError(f"range {first}-{last} answered HTTP {status}")
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if match is None or (int(match.group(1)), int(match.group(2))) != (first, last):
        raise DownloadError("206 answer is not the requested range")
    if content_length not in (None, last - first + 1):
        raise SourceLied(f"range {first}-{last} answered with {content_length} bytes")
    return ChunkRange(chunks, first, last)


def chunks_kept(download: Download, fetched: Fetched) -> LogEvent | None:
    """The `file_chunks_kept` log line of a v1.1 download that found good chunks in its
    partial file (None: it fetched them all)."""
    if fetched.refetched >= fetched.chunks:
        return None
    entry = download.entry
    fields = {
        "trace_id": download.trace_id,
        "name": entry.name,
        "version": entry.version,
        "source": download.source,
        "chunks": fetched.chunks,
        "kept": fetched.chunks - fetched.refetched,
        "fetched": fetched.refetched,
    }
    return LogEvent("file_chunks_kept", "info", fields)


class ProgressDeadline:
    """A download's progress deadline: every `window` seconds, `min_rate * window` more
    bytes (or all that remain of `expected`) must arrive, else it is `Stalled` (a trickle of
    a few bytes resets a per-read timeout forever). `min_rate` 0: no such deadline. The
    driver keeps the timer: `progressed` says when it is due again."""

    def __init__(self, window: float, min_rate: int, expected: int) -> None:
        self.window = window
        self.step = int(min_rate * window)
        self.expected = expected
        self._mark = 0  # bytes received when the deadline last moved
        self._armed = False

    @property
    def active(self) -> bool:
        return self.step > 0

    def progressed(self, received: int, now: float) -> float | None:
        """`received` bytes have arrived by `now`: the new deadline when that moved it (on
        the clock of `now`), None when it stays where it was."""
        if not self.active:
            return None
        if not self._armed or received - self._mark >= min(self.step, self.expected - self._mark):
            self._mark, self._armed = received, True
            return now + self.window
        return None

    def stalled(self, received: int) -> Stalled:
        return Stalled(
            f"stalled: {received - self._mark} bytes in the last {self.window:g}s "
            f"(at least {min(self.step, self.expected - self._mark)} expected)"
        )
