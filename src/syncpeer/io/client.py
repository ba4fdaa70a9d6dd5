"""HTTP client for a friend's API: fetch its listing and download envelopes with resume.

All requests leave from the node's --source-address when one is given (the test framework
tells nodes apart by source IP) and carry X-Trace-Id so the serving node logs the same trace.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import aiohttp
from yarl import URL

from syncpeer.core import protocol
from syncpeer.core.chunks import MIN_CHUNK_SIZE, ChunkList
from syncpeer.core.listing import ListingEntry
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.protocol import Mismatch, Versions

CHUNK_BYTES = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(Exception):
    """A download attempt failed; the partial file is kept when it can be resumed."""


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


def new_session(source_address: str | None, limit: int = 32) -> aiohttp.ClientSession:
    local_addr = (source_address, 0) if source_address else None
    connector = aiohttp.TCPConnector(local_addr=local_addr, limit=limit)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


@dataclass
class Fetched:
    """What a download got: the bytes received, and for a chunked one what it found."""

    received: int
    chunks: int = 0  # v1.1: chunks in the envelope
    refetched: int = 0  # v1.1: chunks fetched (missing or not matching their hash)


class PeerClient:
    """`mutants`: the deliberate bugs of the downloads (`trust-size`, `drop-range-offset`);
    `versions`: the protocol versions offered on every poll."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        mutants: Mutants = NO_MUTANTS,
        versions: Versions = protocol.ALL,
    ) -> None:
        self.session = session
        self.mutants = mutants
        self.versions = versions

    async def listing(
        self, address: str, etag: str | None, trace_id: str, timeout_s: float
    ) -> Listing:
        """GET /files, the whole request within `timeout_s` seconds."""
        headers = {"X-Trace-Id": trace_id, protocol.HEADER: self.versions.header()}
        if etag:
            headers["If-None-Match"] = etag
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        url = URL(f"http://{address}/files")
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
            if response.status == protocol.MISMATCH_STATUS:
                # Said from this node's side: the friend's own message says "this node" of it.
                theirs = protocol.parse_header(response.headers.get(protocol.HEADER))
                raise ProtocolMismatch(protocol.refused(self.versions, theirs).message)
            if response.status not in (200, 304):
                raise DownloadError(f"GET /files answered HTTP {response.status}")
            agreed = protocol.accept(
                self.versions, protocol.parse_header(response.headers.get(protocol.HEADER))
            )
            if isinstance(agreed, Mismatch):
                raise ProtocolMismatch(agreed.message)
            if response.status == 304:
                return Listing(None, response.headers.get("ETag", etag), protocol=agreed.version)
            body = await response.json(content_type=None)
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list):
            raise DownloadError("GET /files answer has no 'files' list")
        entries, invalid = [], []
        for item in files:
            try:
                entries.append(ListingEntry.from_json(item))
            except ValueError as error:
                invalid.append(str(error))
        return Listing(entries, response.headers.get("ETag"), invalid, agreed.version)

    async def download(
        self,
        address: str,
        entry: ListingEntry,
        partial: Path,
        offset: int,
        trace_id: str,
        timeout_s: float,
        stall_timeout: float = 0.0,
        min_rate: int = 0,
    ) -> int:
        """Append the envelope's bytes from `offset` to `partial`; return the bytes received.

        If-Match pins the exact envelope: a friend whose current version changed since its
        listing answers 412 instead of sending other bytes onto our partial file.
        `timeout_s` bounds connecting and each read; with `min_rate`, every `stall_timeout`
        seconds at least `min_rate * stall_timeout` more bytes (or the rest) must arrive,
        else `Stalled` (a trickle of a few bytes resets a per-read timeout forever).
        """
        headers = {"If-Match": f'"{entry.sha256}"', "X-Trace-Id": trace_id}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        url = URL(f"http://{address}") / "files" / entry.name
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
            if response.status == 206:
                match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != offset:
                    raise DownloadError("206 answer does not start at the requested offset")
            elif response.status == 200:
                offset = 0  # the friend ignored our Range: start over
            elif response.status == 416:
                partial.unlink(missing_ok=True)
                raise DownloadError("range not satisfiable; partial file dropped")
            else:
                raise DownloadError(f"GET /files/{entry.name} answered HTTP {response.status}")
            honest = "trust-size" not in self.mutants
            length = response.content_length
            if honest and length is not None and length != entry.size - offset:
                raise SourceLied(
                    f"answer is {length} bytes from offset {offset}, but the listing says the "
                    f"envelope is {entry.size} bytes"
                )
            received = 0
            deadline = _ProgressDeadline(stall_timeout, min_rate, entry.size - offset)
            with partial.open("r+b" if partial.exists() else "wb") as out:
                out.truncate(offset)
                out.seek(0 if "drop-range-offset" in self.mutants else offset)
                try:
                    async with deadline.timeout:
                        deadline.progressed(0)
                        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                            if offset + received + len(chunk) > entry.size:
                                lie = SourceLied if honest else DownloadError
                                raise lie("friend sent more bytes than its listing says")
                            out.write(chunk)
                            received += len(chunk)
                            deadline.progressed(received)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    raise Stalled(deadline.describe(received)) from None
        return received

    async def download_chunked(
        self,
        address: str,
        entry: ListingEntry,
        partial: Path,
        trace_id: str,
        timeout_s: float,
        stall_timeout: float = 5.0,
        min_rate: int = 0,
    ) -> Fetched:
        """Protocol v1.1: fetch the friend's chunk list, keep the chunks of `partial` that
        match it, and fetch the others (neighbours in one Range request each), checking
        every chunk as it arrives. A chunk that does not match the list is the friend's lie.
        """
        headers = {"If-Match": f'"{entry.sha256}"', "X-Trace-Id": trace_id}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        url = URL(f"http://{address}") / "files" / entry.name
        async with self.session.get(url / "chunks", headers=headers, timeout=timeout) as response:
            if response.status != 200:
                raise DownloadError(
                    f"GET /files/{entry.name}/chunks answered HTTP {response.status}"
                )
            # Under the same progress deadline as the chunks: a list trickled a few bytes
            # at a time would hold the download's slot forever.
            # Bounded too: the longest honest list (the smallest chunks) and some room.
            most = 1024 + 80 * (entry.size // MIN_CHUNK_SIZE + 1)
            deadline = _ProgressDeadline(
                stall_timeout, min_rate, response.content_length or sys.maxsize
            )
            listed = bytearray()
            try:
                async with deadline.timeout:
                    deadline.progressed(0)
                    async for piece in response.content.iter_any():
                        listed += piece
                        if len(listed) > most:
                            raise SourceLied(f"chunk list: more than {most} bytes")
                        deadline.progressed(len(listed))
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise Stalled(deadline.describe(len(listed))) from None
        try:
            chunks = ChunkList.from_json(json.loads(listed), entry.sha256, entry.size)
        except ValueError as error:  # json's errors are ValueErrors too
            raise SourceLied(f"chunk list: {error}") from None
        have = partial.read_bytes()[: entry.size] if partial.exists() else b""
        fetched = Fetched(0, len(chunks.hashes))
        with partial.open("r+b" if partial.exists() else "wb") as out:
            out.truncate(len(have))  # never past the envelope; gaps fill as chunks arrive
            for first, last in chunks.plan(have):
                ranged = headers | {"Range": f"bytes={first}-{last}"}
                deadline = _ProgressDeadline(stall_timeout, min_rate, last - first + 1)
                async with self.session.get(url, headers=ranged, timeout=timeout) as response:
                    _check_range(response, first, last)
                    try:
                        async with deadline.timeout:
                            deadline.progressed(0)
                            await self._chunks(
                                response, chunks, first, last, out, fetched, deadline
                            )
                    except TimeoutError:
                        if not deadline.expired():
                            raise
                        raise Stalled(deadline.describe(fetched.received)) from None
        return fetched

    @staticmethod
    async def _chunks(
        response: aiohttp.ClientResponse,
        chunks: ChunkList,
        first: int,
        last: int,
        out: BinaryIO,
        fetched: Fetched,
        deadline: _ProgressDeadline,
    ) -> None:
        """One range's chunks, each checked and written as it arrives: a download cut off
        later keeps every whole chunk it got."""
        for index in chunks.chunks_in(first, last):
            start, end = chunks.span(index)
            try:
                data = await response.content.readexactly(end - start + 1)
            except asyncio.IncompleteReadError as error:
                raise DownloadError(f"chunk {index} cut off: {error}") from None
            if not chunks.matches(index, data):
                raise SourceLied(f"chunk {index} does not match the friend's list")
            out.seek(start)
            out.write(data)
            out.flush()
            fetched.received += len(data)
            fetched.refetched += 1
            deadline.progressed(end + 1 - first)


def _check_range(response: aiohttp.ClientResponse, first: int, last: int) -> None:
    if response.status != 206:
        raise DownloadError(f"GET {response.url.path} answered HTTP {response.status}")
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None or (int(match.group(1)), int(match.group(2))) != (first, last):
        raise DownloadError("206 answer is not the requested range")
    if response.content_length not in (None, last - first + 1):
        raise SourceLied(f"range {first}-{last} answered with {response.content_length} bytes")


class _ProgressDeadline:
    """Every `window` seconds, `min_rate * window` more bytes (or all that remain of
    `expected`) must arrive; the deadline moves on each time they have."""

    def __init__(self, window: float, min_rate: int, expected: int) -> None:
        self.window = window
        self.step = int(min_rate * window)
        self.expected = expected
        self.timeout = asyncio.timeout(None)
        self._mark = 0  # bytes received when the deadline last moved
        self._armed = False

    def progressed(self, received: int) -> None:
        if self.step <= 0:
            return
        if not self._armed or received - self._mark >= min(self.step, self.expected - self._mark):
            self._mark, self._armed = received, True
            self.timeout.reschedule(asyncio.get_running_loop().time() + self.window)

    def expired(self) -> bool:
        return self.step > 0 and self.timeout.expired()

    def describe(self, received: int) -> str:
        return (
            f"stalled: {received - self._mark} bytes in the last {self.window:g}s "
            f"(at least {min(self.step, self.expected - self._mark)} expected)"
        )
