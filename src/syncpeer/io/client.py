"""HTTP client for a friend's API: fetch its listing and download envelopes with resume.

What the answers mean (protocol versions, 304s, Ranges, chunk lists, lies about lengths, the
fetching side's mutants) is `syncpeer.core.fetch`; this module sends the requests with
aiohttp and writes the bytes. All requests leave from the node's --source-address when one
is given (the test framework tells nodes apart by source IP) and carry X-Trace-Id so the
serving node logs the same trace.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

import aiohttp
from yarl import URL

from syncpeer.core import protocol
from syncpeer.core.fetch import (
    ChunkRange,
    DownloadError,
    Fetched,
    Listing,
    ProgressDeadline,
    ProtocolMismatch,
    SourceLied,
    Stalled,
    begin_chunk_list,
    begin_download,
    begin_range,
    download_headers,
    listing_agreed,
    listing_headers,
    range_headers,
    read_listing,
)
from syncpeer.core.listing import ListingEntry
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.protocol import Versions

__all__ = [
    "CHUNK_BYTES",
    "DownloadError",
    "Fetched",
    "Listing",
    "PeerClient",
    "ProtocolMismatch",
    "SourceLied",
    "Stalled",
    "new_session",
]

CHUNK_BYTES = 64 * 1024


def new_session(source_address: str | None, limit: int = 32) -> aiohttp.ClientSession:
    local_addr = (source_address, 0) if source_address else None
    connector = aiohttp.TCPConnector(local_addr=local_addr, limit=limit)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


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
        self,
        address: str,
        etag: str | None,
        trace_id: str,
        timeout_s: float,
        me: str | None = None,
    ) -> Listing:
        """GET /files, the whole request within `timeout_s` seconds; `me`: this node's
        fingerprint, named to the friend."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        url = URL(f"http://{address}/files")
        headers = listing_headers(etag, trace_id, self.versions, me)
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
            version = listing_agreed(
                response.status, response.headers.get(protocol.HEADER), self.versions
            )
            body = await response.json(content_type=None) if response.status == 200 else None
            return read_listing(response.status, response.headers.get("ETag"), etag, body, version)

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
        """v1.0: append the envelope's bytes from `offset` to `partial`; return the bytes
        received. `timeout_s` bounds connecting and each read; `stall_timeout` and
        `min_rate` the progress (`ProgressDeadline`: else `Stalled`)."""
        headers = download_headers(entry, offset, trace_id)
        url = URL(f"http://{address}") / "files" / entry.name
        async with self.session.get(url, headers=headers, timeout=_timeout(timeout_s)) as response:
            try:
                receiving = begin_download(
                    entry,
                    offset,
                    response.status,
                    response.headers.get("Content-Range"),
                    response.content_length,
                    self.mutants,
                )
            except DownloadError:
                if response.status == 416:
                    partial.unlink(missing_ok=True)
                raise
            deadline = ProgressDeadline(stall_timeout, min_rate, entry.size - receiving.offset)
            with partial.open("r+b" if partial.exists() else "wb") as out:
                out.truncate(receiving.offset)
                out.seek(receiving.write_at)

                def write(chunk: bytes) -> int:
                    receiving.take(len(chunk))
                    out.write(chunk)
                    return receiving.received

                await _paced(deadline, response.content.iter_chunked(CHUNK_BYTES), write)
        return receiving.received

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
        """v1.1: fetch the friend's chunk list, keep the chunks of `partial` that match it,
        and fetch the others (neighbours in one Range request each), checking every chunk
        as it arrives. The list and each range are under the progress deadline: a friend
        that trickles either would hold the download's slot forever."""
        headers = download_headers(entry, 0, trace_id)
        url = URL(f"http://{address}") / "files" / entry.name
        async with self.session.get(
            url / "chunks", headers=headers, timeout=_timeout(timeout_s)
        ) as response:
            listed = begin_chunk_list(entry, response.status)
            deadline = ProgressDeadline(
                stall_timeout, min_rate, response.content_length or sys.maxsize
            )

            def take(piece: bytes) -> int:
                listed.take(piece)
                return listed.received

            await _paced(deadline, response.content.iter_any(), take)
        chunks = listed.chunks()
        have = partial.read_bytes()[: entry.size] if partial.exists() else b""
        fetched = Fetched(0, len(chunks.hashes))
        with partial.open("r+b" if partial.exists() else "wb") as out:
            out.truncate(len(have))  # never past the envelope; gaps fill as chunks arrive
            for first, last in chunks.plan(have):
                ranged = range_headers(entry, first, last, trace_id)
                deadline = ProgressDeadline(stall_timeout, min_rate, last - first + 1)
                async with self.session.get(
                    url, headers=ranged, timeout=_timeout(timeout_s)
                ) as response:
                    part = begin_range(
                        chunks,
                        first,
                        last,
                        response.status,
                        response.headers.get("Content-Range"),
                        response.content_length,
                    )
                    await _paced(
                        deadline,
                        response.content.iter_chunked(CHUNK_BYTES),
                        functools.partial(_write_chunks, part, out, fetched),
                    )
                    part.end()
        return fetched


def _write_chunks(part: ChunkRange, out: BinaryIO, fetched: Fetched, piece: bytes) -> int:
    """Each chunk `piece` completed, checked, written where it belongs and flushed: a
    download cut off later keeps it."""
    for position, data in part.take(piece):
        out.seek(position)
        out.write(data)
        out.flush()
        fetched.received += len(data)
        fetched.refetched += 1
    return part.done


async def _paced(
    deadline: ProgressDeadline, pieces: AsyncIterator[bytes], take: Callable[[bytes], int]
) -> None:
    """Hand each piece of an answer to `take` (which says how far the answer got) under the
    progress deadline: `Stalled` when it is not kept."""
    clock = asyncio.get_running_loop()
    progress = 0
    try:
        async with asyncio.timeout_at(deadline.progressed(0, clock.time())) as due:
            async for piece in pieces:
                progress = take(piece)
                moved = deadline.progressed(progress, clock.time())
                if moved is not None:
                    due.reschedule(moved)
    except TimeoutError:
        if not (deadline.active and due.expired()):
            raise
        raise deadline.stalled(progress) from None


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """Bounds connecting and each read, not the whole transfer (the progress deadline's)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
