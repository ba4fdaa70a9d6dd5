"""HTTP client for a friend's API: fetch its listing and download envelopes with resume.

What the answers mean (304s, Ranges, lies about lengths, the fetching side's mutants) is
`syncpeer.core.fetch`; this module sends the requests with aiohttp and writes the bytes.
All requests leave from the node's --source-address when one is given (the test framework
tells nodes apart by source IP) and carry X-Trace-Id so the serving node logs the same trace.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from yarl import URL

from syncpeer.core.fetch import (
    DownloadError,
    Listing,
    ProgressDeadline,
    SourceLied,
    Stalled,
    begin_download,
    download_headers,
    listing_headers,
    read_listing,
)
from syncpeer.core.listing import ListingEntry
from syncpeer.core.mutants import NO_MUTANTS, Mutants

__all__ = [
    "CHUNK_BYTES",
    "DownloadError",
    "Listing",
    "PeerClient",
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
    """`mutants`: the deliberate bugs of the downloads (`trust-size`, `drop-range-offset`)."""

    def __init__(self, session: aiohttp.ClientSession, mutants: Mutants = NO_MUTANTS) -> None:
        self.session = session
        self.mutants = mutants

    async def listing(
        self, address: str, etag: str | None, trace_id: str, timeout_s: float
    ) -> Listing:
        """GET /files, the whole request within `timeout_s` seconds."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        url = URL(f"http://{address}/files")
        headers = listing_headers(etag, trace_id)
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
            body = await response.json(content_type=None) if response.status == 200 else None
            return read_listing(response.status, response.headers.get("ETag"), etag, body)

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
        `timeout_s` bounds connecting and each read; `stall_timeout` and `min_rate` the
        progress (`ProgressDeadline`: else `Stalled`)."""
        headers = download_headers(entry, offset, trace_id)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        url = URL(f"http://{address}") / "files" / entry.name
        async with self.session.get(url, headers=headers, timeout=timeout) as response:
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
            clock = asyncio.get_running_loop()
            with partial.open("r+b" if partial.exists() else "wb") as out:
                out.truncate(receiving.offset)
                out.seek(receiving.write_at)
                try:
                    async with asyncio.timeout_at(deadline.progressed(0, clock.time())) as due:
                        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                            receiving.take(len(chunk))
                            out.write(chunk)
                            moved = deadline.progressed(receiving.received, clock.time())
                            if moved is not None:
                                due.reschedule(moved)
                except TimeoutError:
                    if not (deadline.active and due.expired()):
                        raise
                    raise deadline.stalled(receiving.received) from None
        return receiving.received
