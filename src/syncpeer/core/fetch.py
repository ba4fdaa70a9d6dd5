"""The client side of the sync protocol, sans-IO: what a friend's answers mean.

A driver (`syncpeer.io.client` over aiohttp, or a simulator) sends the requests and hands
the answers' statuses, headers and bytes to these functions, which say what was listed,
where a download's bytes go, and when an answer is a friend's lie rather than a network
accident. The mutants of the fetching side (`trust-size`, `drop-range-offset`) are decided
here, so every driver has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from syncpeer.core.listing import ListingEntry
from syncpeer.core.mutants import Mutants

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(Exception):
    """A request failed; a download's partial file is kept when it can be resumed."""


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


def listing_headers(etag: str | None, trace_id: str) -> dict[str, str]:
    """The headers of a poll: the trace, and the ETag of the last answer as If-None-Match."""
    headers = {"X-Trace-Id": trace_id}
    if etag:
        headers["If-None-Match"] = etag
    return headers


def read_listing(status: int, etag: str | None, sent_etag: str | None, body: Any) -> Listing:
    """A poll's answer (`body`: the parsed JSON of a 200); DownloadError when unusable."""
    if status == 304:
        return Listing(None, etag or sent_etag)
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
    return Listing(entries, etag, invalid)


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
