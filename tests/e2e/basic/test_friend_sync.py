"""syncpeer basics: friend sync, multi-peer relay, and confidentiality (TC-002, TC-003, TC-301),
on real processes and on the simulator."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import (
    SyncpeerAdapter,
    SyncpeerError,
    assert_file_synced,
    assert_friends,
)

pytestmark = pytest.mark.sim


def _events(env: Environment, node: str, event: str) -> list[dict]:
    found = []
    for line in env.node(node).logs(100_000):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


def _data_files(env: Environment, node: str, target: Path) -> list[Path]:
    """The node's data dir as it is on its disk (copied while the node is frozen)."""
    frozen = env.freeze([node])
    try:
        env.export_data(env.node(node), target)
    finally:
        env.thaw(frozen)
    return [p for p in target.rglob("*") if p.is_file()]


def test_two_peer_friend_sync(peerlab_env: Environment, tmp_path: Path) -> None:
    """TC-002: A and B become friends; A's file for B reaches B, decrypts, and is ciphertext
    on disk; B logs the completed download."""
    peerlab_env.start("syncpeer", 2)
    adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
    adapter.befriend("A", "B")
    assert_friends(peerlab_env, "A", "B")
    content = b"hello.txt from A to B\n" + os.urandom(64)
    peerlab_env.client("A").publish("hello.txt", content, adapter.fingerprints(["B"]))

    assert_file_synced(peerlab_env, "hello.txt", ["B"], content=content, timeout=10)
    assert peerlab_env.client("B").content("hello.txt") == content
    on_disk = [p for p in _data_files(peerlab_env, "B", tmp_path / "B") if "hello.txt" in p.name]
    assert on_disk, "B keeps no file for hello.txt in its data dir"
    for path in on_disk:
        assert content not in path.read_bytes(), f"{path} holds the plaintext"
    completed = peerlab_env.wait_until(
        lambda: _events(peerlab_env, "B", "file_download_completed"),
        5,
        what="file_download_completed in B's log",
    )
    assert any(r.get("name", r.get("file")) == "hello.txt" for r in completed), completed


def test_five_peers_seed_graph(peerlab_env: Environment) -> None:
    """TC-003: friends A-B, A-C, A-D, B-E, C-E; A's public file reaches all five with equal
    SHA-256 and no peer fetches it twice."""
    peerlab_env.start("syncpeer", 5)
    adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
    adapter.befriend_graph([("A", "B"), ("A", "C"), ("A", "D"), ("B", "E"), ("C", "E")])
    content = os.urandom(200_000)
    peerlab_env.client("A").publish("public.bin", content, "public")
    assert_file_synced(peerlab_env, "public.bin", "BCDE", content=content, timeout=30)

    digests = {
        n: hashlib.sha256(peerlab_env.client(n).content("public.bin")).hexdigest() for n in "ABCDE"
    }
    assert len(set(digests.values())) == 1, digests
    for node in "BCDE":
        fetched = [
            r
            for r in _events(peerlab_env, node, "file_download_completed")
            if r.get("name", r.get("file")) == "public.bin"
        ]
        assert len(fetched) == 1, f"{node} fetched public.bin {len(fetched)} times: {fetched}"


@pytest.mark.security
def test_unauthorized_access(peerlab_env: Environment) -> None:
    """TC-301: A's file for B only; C (not a friend) gets the ciphertext but cannot decrypt it,
    and no log anywhere holds the plaintext."""
    peerlab_env.start("syncpeer", 3)
    adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
    adapter.befriend("A", "B")
    secret = b"TOP-SECRET-" + os.urandom(16).hex().encode()
    peerlab_env.client("A").publish("secret.txt", secret, adapter.fingerprints(["B"]))
    assert_file_synced(peerlab_env, "secret.txt", ["B"], content=secret, timeout=10)

    envelope = peerlab_env.client("A").envelope("secret.txt")
    assert secret not in envelope
    with pytest.raises(SyncpeerError) as info:
        peerlab_env.client("C").open_envelope(envelope)
    assert info.value.status == 403
    assert peerlab_env.client("C").file("secret.txt") is None
    for node in peerlab_env:
        for stream in ("stdout", "stderr"):
            assert not any(secret.decode() in line for line in node.logs(100_000, stream)), (
                f"plaintext found in {node.name}'s {stream}"
            )


def test_a_wrong_final_version_fails_at_once_with_a_diff(peerlab_env: Environment) -> None:
    """TC-004: assert_file_synced(content=...) does not wait its timeout for a file that
    arrived whole and wrong, and shows how it differs."""
    peerlab_env.start("syncpeer", 2)
    adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
    adapter.befriend("A", "B")
    peerlab_env.client("A").publish("notes.txt", b"one\ntwo\nthree\n", adapter.fingerprints(["B"]))
    assert_file_synced(peerlab_env, "notes.txt", ["B"], timeout=30)
    clock = peerlab_env.clock  # on the simulator, its waits take virtual time
    began = clock.monotonic()
    with pytest.raises(AssertionError) as failure:
        assert_file_synced(peerlab_env, "notes.txt", ["B"], content=b"one\n2\nthree\n", timeout=120)
    assert clock.monotonic() - began < 60  # not the full 120 s
    message = str(failure.value)
    assert "B holds the latest version of 'notes.txt'" in message
    assert "-2\n+two" in message
