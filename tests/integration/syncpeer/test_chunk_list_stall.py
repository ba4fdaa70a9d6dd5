"""A v1.1 download gives up on a friend that trickles its chunk list, as it does on one that
trickles the chunks: a per-read timeout alone would wait forever."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from syncpeer.core.listing import ListingEntry
from syncpeer.io.client import PeerClient, SourceLied, Stalled

CONTENT = b"x" * 10_000


def _entry() -> ListingEntry:
    digest = hashlib.sha256(CONTENT).hexdigest()
    return ListingEntry("f.bin", "a" * 40, 1, 0.0, len(CONTENT), digest, True, ())


async def _fetch(tmp_path: Path, flood: bool = False) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"chunk_bytes": 1024, "hashes": [')
        while True:  # never the end of the list: a few bytes now and then, or a flood
            await response.write(b'"00",' * (1000 if flood else 1))
            await asyncio.sleep(0 if flood else 0.05)

    app = web.Application()
    app.router.add_get("/files/{name}/chunks", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            client = PeerClient(session)
            await client.download_chunked(
                f"127.0.0.1:{port}", _entry(), tmp_path / "partial", "t", 30.0, 0.5, 1000
            )
    finally:
        await runner.cleanup()


def test_a_trickled_chunk_list_is_a_stall(tmp_path: Path) -> None:
    with pytest.raises(Stalled, match="stalled"):
        asyncio.run(_fetch(tmp_path))


def test_an_endless_chunk_list_is_a_lie(tmp_path: Path) -> None:
    with pytest.raises(SourceLied, match="chunk list: more than"):
        asyncio.run(_fetch(tmp_path, flood=True))
