"""Two real nodes on 127.0.0.1 in one event loop: friends, sync, HTTP API, Range resume."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from syncpeer.core import envelope, protocol
from syncpeer.core.chunks import CHUNK_SIZE
from syncpeer.core.identity import Identity
from syncpeer.core.protocol import Versions
from syncpeer.core.store import StoredFile
from syncpeer.io.config import NodeConfig
from syncpeer.io.node import Node

TIMEOUT = 10.0


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class Peer:
    """A node plus an HTTP client for its API and a capture of its log lines."""

    def __init__(self, node: Node, log: io.StringIO, http: aiohttp.ClientSession) -> None:
        self.node, self._log, self.http = node, log, http
        self.url = f"http://127.0.0.1:{node.port}"

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self._log.getvalue().splitlines()]
        return [line for line in lines if line["event"] == name]

    async def get_json(self, path: str, status: int = 200) -> Any:
        async with self.http.get(self.url + path) as response:
            assert response.status == status, await response.text()
            return await response.json()

    async def post_json(self, path: str, body: Any, status: int = 200) -> Any:
        async with self.http.post(self.url + path, json=body) as response:
            assert response.status == status, await response.text()
            return await response.json()

    async def befriend(self, other: Peer, address: str | None = None) -> None:
        card = await other.get_json("/identity")
        await self.post_json("/admin/friends", {"card": card, "address": address or other.url[7:]})

    async def publish(self, name: str, content: bytes, recipients: list[str] | str) -> Any:
        body = {
            "name": name,
            "content_b64": base64.b64encode(content).decode(),
            "recipients": recipients,
        }
        return await self.post_json("/admin/files", body)

    async def holds(self, name: str, version: int) -> bool:
        files = (await self.get_json("/admin/files"))["files"]
        return any(f["name"] == name and f["version"] == version for f in files)


@asynccontextmanager
async def peers(
    tmp_path: Path, *names: str, versions: Versions = protocol.ALL
) -> AsyncIterator[list[Peer]]:
    started: list[Peer] = []
    async with aiohttp.ClientSession() as http:
        try:
            for name in names:
                log = io.StringIO()
                config = NodeConfig(
                    data_dir=tmp_path / name,
                    name=name,
                    poll_interval=0.05,
                    http_timeout=2.0,
                    versions=versions,
                )
                node = Node(config, stream=log)
                await node.start()
                started.append(Peer(node, log, http))
            yield started
        finally:
            for peer in started:
                await peer.node.stop()


def test_file_reaches_friend_decrypts_and_carries_the_trace_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob") as (alice, bob):
            assert (await alice.get_json("/health"))["status"] == "ok"
            await alice.befriend(bob)
            await bob.befriend(alice)
            bob_fpr = bob.node.fingerprint
            published = await alice.publish("hello.txt", b"hello bob", [bob_fpr])
            assert published["version"] == 1 and published["decryptable"] is True
            await wait_until(lambda: bob.holds("hello.txt", 1), "bob to receive hello.txt")
            async with bob.http.get(bob.url + "/admin/files/hello.txt/content") as response:
                assert response.status == 200 and await response.read() == b"hello bob"
            [published_log] = alice.events("file_published")
            [completed] = bob.events("file_download_completed")
            assert completed["trace_id"] == published_log["trace_id"] == published["trace_id"]
            assert alice.events("file_served")[0]["trace_id"] == published["trace_id"]
            events = await alice.get_json("/admin/events?since=0")
            assert "file_published" in [event["event"] for event in events["events"]]
            later = await alice.get_json(f"/admin/events?since={events['next']}")
            assert "file_published" not in [event["event"] for event in later["events"]]
            status = await bob.get_json("/admin/status")
            assert status["downloads"]["completed"] == 1
            assert list(status["fetches"].values()) == [1]
            assert b"hello bob" not in (tmp_path / "bob/files/hello.txt.spe").read_bytes()

            # A second version replaces the first on both sides; the first is kept.
            await alice.publish("hello.txt", b"hello again", [bob_fpr])
            await wait_until(lambda: bob.holds("hello.txt", 2), "bob to receive version 2")
            versions = await bob.get_json("/admin/files/hello.txt/versions")
            assert versions["current"]["version"] == 2
            assert [v["version"] for v in versions["versions"]] == [1]
            assert Path(versions["versions"][0]["path"]).exists()

    asyncio.run(scenario())


def test_listing_conditional_requests_ranges_and_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob") as (alice, bob):
            await alice.befriend(bob)
            await alice.publish("pub.txt", b"0123456789" * 100, "public")
            async with alice.http.get(alice.url + "/files") as response:
                etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
                listing = await response.json()
            [entry] = listing["files"]
            assert entry["public"] and listing["generation"] == 1
            for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
                async with alice.http.get(alice.url + "/files", headers=headers) as response:
                    assert response.status == 304
            by_other = await alice.get_json(f"/files?author={bob.node.fingerprint}")
            assert by_other["files"] == []

            url = alice.url + "/files/pub.txt"
            async with alice.http.get(url) as response:
                whole = await response.read()
                assert response.headers["ETag"] == f'"{entry["sha256"]}"'
            envelope.verify(whole)
            async with alice.http.get(url, headers={"Range": "bytes=100-"}) as response:
                assert response.status == 206
                assert (
                    response.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
                )
                assert await response.read() == whole[100:]
            async with alice.http.get(url, headers={"Range": "bytes=10-19"}) as response:
                assert response.status == 206 and await response.read() == whole[10:20]
            async with alice.http.get(url, headers={"Range": f"bytes={len(whole)}-"}) as response:
                assert response.status == 416 and "error" in await response.json()
            async with alice.http.get(url, headers={"If-Match": '"nope"'}) as response:
                assert response.status == 412

            assert "error" in await alice.get_json("/files/missing.txt", status=404)
            assert "error" in await alice.get_json("/files/..%2Fidentity.json", status=400)
            bad_card = {**(await bob.get_json("/identity")), "name": "mallory"}
            error = await alice.post_json(
                "/admin/friends", {"card": bad_card, "address": "127.0.0.1:1"}, status=400
            )
            assert "signature" in error["error"]
            stranger = "f" * 40
            body = {"name": "x.txt", "content_b64": "eA==", "recipients": [stranger]}
            error = await alice.post_json("/admin/files", body, status=400)
            assert stranger in error["error"]
            await alice.get_json("/admin/files/nothing.txt/content", status=404)

            # An envelope this node holds but may not read: 403, and no plaintext hash shown.
            carol = Identity.generate("carol", os.urandom)
            sealed = envelope.seal(
                carol,
                name="carol.txt",
                version=1,
                timestamp=1.0,
                plaintext=b"secret",
                recipients=[],
                random=os.urandom,
            )
            stored = StoredFile.from_envelope(
                envelope.verify(sealed), len(sealed), hashlib.sha256(sealed).hexdigest()
            )
            alice.node.files.accept_bytes(alice.node.files.model.decide(stored), sealed)
            error = await alice.get_json("/admin/files/carol.txt/content", status=403)
            assert error == {"error": "not a recipient"}
            described = {f["name"]: f for f in (await alice.get_json("/admin/files"))["files"]}
            assert described["carol.txt"]["decryptable"] is False
            assert described["carol.txt"]["sha256_plain"] is None

            deleted = await alice.http.delete(f"{alice.url}/admin/friends/{bob.node.fingerprint}")
            assert deleted.status == 200
            assert (await alice.get_json("/admin/friends"))["friends"] == []

    asyncio.run(scenario())


@asynccontextmanager
async def half_serving_proxy(upstream: Peer) -> AsyncIterator[str]:
    """A stand-in for `upstream` that relays its listing but cuts the first envelope download
    off halfway (as if the source crashed) and answers 503 to any later one."""
    cut: list[int] = []

    async def listing(request: web.Request) -> web.Response:
        return web.json_response(await upstream.get_json("/files"))

    async def download(request: web.Request) -> web.StreamResponse:
        if cut:
            return web.json_response({"error": "gone"}, status=503)
        async with upstream.http.get(f"{upstream.url}/files/{request.match_info['name']}") as r:
            whole = await r.read()
        cut.append(len(whole) // 2)
        response = web.StreamResponse(headers={"ETag": r.headers["ETag"]})
        response.content_length = len(whole)
        await response.prepare(request)
        await response.write(whole[: cut[0]])
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.add_routes([web.get("/files", listing), web.get("/files/{name}", download)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("version", protocol.VERSIONS)
def test_interrupted_download_resumes_with_range_from_another_source(
    tmp_path: Path, version: str
) -> None:
    """v1.0 resumes from where the partial file ends; v1.1 keeps the partial file's whole
    chunks that match the chunk list and fetches from the first one that does not. The
    proxy that cuts the first attempt short sends no protocol header: a v1.0 server."""
    content = os.urandom(300_000)

    async def scenario() -> None:
        versions = Versions.between(protocol.V1_0, version)
        async with peers(tmp_path, "alice", "bob", versions=versions) as (alice, bob):
            await alice.befriend(bob)
            published = await alice.publish("big.bin", content, [bob.node.fingerprint])
            partial = bob.node.files.partial_path(published["sha256"])
            async with half_serving_proxy(alice) as proxy_address:
                # Bob first knows Alice only through the proxy, which dies mid-transfer.
                await bob.befriend(alice, address=proxy_address)

                async def half_arrived() -> bool:
                    failed = bob.events("file_download_failed")
                    return bool(failed) and partial.exists()

                await wait_until(half_arrived, "the cut-off download to leave a partial file")
                have = partial.stat().st_size
                assert 0 < have < published["size"]
            # Now Bob learns Alice's real address: the download resumes where it stopped.
            await bob.befriend(alice)
            await wait_until(lambda: bob.holds("big.bin", 1), "bob to finish big.bin")

            resumed = bob.events("file_download_resumed")
            assert resumed and resumed[-1]["offset"] == have
            assert resumed[-1]["trace_id"] == published["trace_id"]
            resumed_at = have if version == protocol.V1_0 else have // CHUNK_SIZE * CHUNK_SIZE
            served = [e for e in alice.events("file_served") if e["first"] == resumed_at]
            assert served, "alice never served the remainder with a Range request"
            assert not [e for e in alice.events("file_served") if 0 < e["first"] < resumed_at]
            if version == protocol.V1_1:
                [kept] = bob.events("file_chunks_kept")
                assert kept["kept"] == have // CHUNK_SIZE > 0
            async with bob.http.get(bob.url + "/admin/files/big.bin/content") as response:
                assert await response.read() == content
            assert not partial.exists()
            status = await bob.get_json("/admin/status")
            assert status["downloads"]["started"] == 1
            assert status["downloads"]["resumed"] >= 1
            assert status["downloads"]["completed"] == 1

    asyncio.run(scenario())


def test_files_relay_through_a_friend_and_concurrent_edits_converge(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
            # Carol only knows Bob; Alice's file reaches her through him.
            await alice.befriend(bob)
            await alice.befriend(carol)
            await bob.befriend(alice)
            await carol.befriend(bob)
            everyone = [bob.node.fingerprint, carol.node.fingerprint]
            await alice.publish("shared.txt", b"base", everyone)
            await wait_until(lambda: carol.holds("shared.txt", 1), "carol to get it via bob")
            [completed] = carol.events("file_download_completed")
            assert completed["source"] == bob.node.fingerprint

            # Alice and Bob now edit at the same time without seeing each other ...
            await bob.befriend(alice, address="127.0.0.1:9")  # nothing listens there
            await bob.befriend(carol)
            await carol.befriend(alice)
            await wait_until(lambda: bob.holds("shared.txt", 1), "bob to hold version 1")
            edit_a = await alice.publish("shared.txt", b"alice's edit", everyone)
            edit_b = await bob.publish(
                "shared.txt", b"bob's edit", [alice.node.fingerprint, carol.node.fingerprint]
            )
            assert edit_a["version"] == edit_b["version"] == 2
            # ... then the partition heals.
            await bob.befriend(alice)
            winner = max(
                (edit_a, edit_b), key=lambda e: (e["version"], e["timestamp"], e["author"])
            )
            loser = edit_b if winner is edit_a else edit_a

            async def converged() -> bool:
                currents = []
                for peer in (alice, bob, carol):
                    files = (await peer.get_json("/admin/files"))["files"]
                    currents.append([(f["author"], f["version"]) for f in files])
                return all(c == [(winner["author"], 2)] for c in currents)

            await wait_until(converged, "all three to make the same edit current")
            loser_node = alice if loser is edit_a else bob
            versions = await loser_node.get_json("/admin/files/shared.txt/versions")
            kept = {(v["author"], v["version"]) for v in versions["versions"]}
            assert (loser["author"], 2) in kept, "the losing edit was lost"

    asyncio.run(scenario())


@asynccontextmanager
async def lying_proxy(upstream: Peer) -> AsyncIterator[str]:
    """Relays `upstream`'s listing and envelopes with one body byte flipped (and the listing's
    sha256 updated to match, so only the signature can catch it)."""

    async def tampered(name: str) -> bytes:
        async with upstream.http.get(f"{upstream.url}/files/{name}") as response:
            data = bytearray(await response.read())
        data[-70] ^= 0x01  # inside the body: the signature is the last 64 bytes
        return bytes(data)

    async def listing(request: web.Request) -> web.Response:
        body = await upstream.get_json("/files")
        for entry in body["files"]:
            entry["sha256"] = hashlib.sha256(await tampered(entry["name"])).hexdigest()
        return web.json_response(body)

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=await tampered(request.match_info["name"]))

    app = web.Application()
    app.add_routes([web.get("/files", listing), web.get("/files/{name}", download)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_tampered_envelope_is_rejected_logged_and_not_stored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob") as (alice, bob):
            await alice.befriend(bob)
            await alice.publish("note.txt", b"genuine", [bob.node.fingerprint])
            async with lying_proxy(alice) as liar:
                await bob.befriend(alice, address=liar)

                async def rejected() -> bool:
                    return bool(bob.events("file_rejected"))

                await wait_until(rejected, "bob to reject the tampered envelope")
            [event] = bob.events("file_rejected")
            assert "signature" in event["reason"] and event["name"] == "note.txt"
            assert (await bob.get_json("/admin/files"))["files"] == []
            assert (await bob.get_json("/admin/status"))["downloads"]["rejected"] == 1
            await bob.befriend(alice)
            await wait_until(lambda: bob.holds("note.txt", 1), "bob to get the genuine envelope")

    asyncio.run(scenario())


def test_v1_1_fetches_only_the_chunk_that_rotted_in_a_partial_file(tmp_path: Path) -> None:
    """A partial file holding the whole envelope but one damaged chunk: v1.1 fetches that
    chunk alone (v1.0 would fetch everything, or nothing useful)."""
    content = os.urandom(4 * CHUNK_SIZE)

    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob") as (alice, bob):
            await alice.befriend(bob)
            published = await alice.publish("big.bin", content, [bob.node.fingerprint])
            whole = (alice.node.data.files / "big.bin.spe").read_bytes()
            damaged = bytearray(whole)
            damaged[2 * CHUNK_SIZE + 99] ^= 0x01
            bob.node.files.partial_path(published["sha256"]).write_bytes(bytes(damaged))
            await bob.befriend(alice)
            await wait_until(lambda: bob.holds("big.bin", 1), "bob to finish big.bin")
            served = [(e["first"], e["last"]) for e in alice.events("file_served")]
            assert served == [(2 * CHUNK_SIZE, 3 * CHUNK_SIZE - 1)]
            [kept] = bob.events("file_chunks_kept")
            assert (kept["chunks"], kept["kept"], kept["fetched"]) == (5, 4, 1)
            [completed] = bob.events("file_download_completed")
            assert completed["protocol"] == "1.1"
            status = await bob.get_json("/admin/status")
            assert status["bytes_downloaded"] == CHUNK_SIZE
            assert status["protocol"]["friends"] == {alice.node.fingerprint: "1.1"}
            async with bob.http.get(bob.url + "/admin/files/big.bin/content") as response:
                assert await response.read() == content

    asyncio.run(scenario())
