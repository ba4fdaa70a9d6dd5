"""Real nodes in one event loop: deletes over HTTP, and a node in each byzantine mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_syncpeer_http import Peer, peers, wait_until

from syncpeer.io.config import NodeConfig
from syncpeer.io.node import Node


def test_delete_propagates_as_a_tombstone_and_a_publish_brings_the_name_back(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with peers(tmp_path, "alice", "bob") as (alice, bob):
            await alice.befriend(bob)
            await bob.befriend(alice)
            await alice.publish("gone.txt", b"soon deleted", "public")
            await wait_until(lambda: bob.holds("gone.txt", 1), "bob to receive gone.txt")
            async with alice.http.delete(alice.url + "/admin/files/gone.txt") as response:
                assert response.status == 200, await response.text()
                tombstone = await response.json()
            assert tombstone["deleted"] is True and tombstone["version"] == 2
            async with alice.http.delete(alice.url + "/admin/files/gone.txt") as response:
                assert response.status == 404, "deleting twice must say it is gone"
            await wait_until(lambda: bob.holds("gone.txt", 2), "bob to receive the tombstone")
            async with bob.http.get(bob.url + "/admin/files/gone.txt/content") as response:
                assert response.status == 404 and "deleted" in (await response.json())["error"]
            await bob.publish("gone.txt", b"back again", "public")
            await wait_until(lambda: alice.holds("gone.txt", 3), "alice to see it come back")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("corrupt", "signature"),
        ("lie-size", "listing says"),
        ("lie-hash", "sha256 mismatch"),
        ("lie-timestamp", "does not match the listing"),
    ],
)
def test_lying_relay_is_detected_and_honest_friend_still_delivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, reason: str
) -> None:
    """alice publishes; mallory relays it lying; carol hears of it only from mallory first,
    rejects it naming mallory, stores nothing, then gets the genuine file from alice."""

    async def scenario() -> None:
        async with peers(tmp_path, "alice", "carol") as (alice, carol):
            monkeypatch.setenv("SYNCPEER_BYZANTINE", mode)
            mallory = await start(tmp_path / "mallory", carol)
            monkeypatch.delenv("SYNCPEER_BYZANTINE")
            try:
                await mallory.befriend(alice)
                await alice.publish("note.txt", b"genuine " * 100, "public")
                await wait_until(lambda: mallory.holds("note.txt", 1), "mallory to relay")
                await carol.befriend(mallory)

                async def rejected() -> bool:
                    return bool(carol.events("file_rejected"))

                await wait_until(rejected, f"carol to reject mallory's {mode} envelope")
                event = carol.events("file_rejected")[0]
                assert reason in event["reason"], event
                assert event["source"] == mallory.node.fingerprint
                assert (await carol.get_json("/admin/files"))["files"] == []
                await carol.befriend(alice)
                await wait_until(lambda: carol.holds("note.txt", 1), "the genuine file")
                [held] = (await carol.get_json("/admin/files"))["files"]
                [genuine] = (await alice.get_json("/admin/files"))["files"]
                assert held["sha256"] == genuine["sha256"]
            finally:
                await mallory.node.stop()

    asyncio.run(scenario())


async def start(data_dir: Path, like: Peer) -> Peer:
    import io

    log = io.StringIO()
    config = NodeConfig(data_dir=data_dir, name=data_dir.name, poll_interval=0.05, http_timeout=2.0)
    node = Node(config, stream=log)
    await node.start()
    return Peer(node, log, like.http)
