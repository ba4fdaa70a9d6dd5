"""Slowloris mid-transfer (syft 3.1 "slowloris", "drop attacks"): friends that answer a
download and then stall in the middle of the body, several at once (TC-737)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced
from peerlab.systems.syncpeer_checks import log_events

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

LIARS = ["S1", "S2", "S3"]
BIG = os.urandom(400_000)
OTHERS = {f"held-{i}.bin": os.urandom(60_000) for i in range(8)}


def test_stalled_downloads_give_up_resume_elsewhere_and_free_their_slots(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-737: S1, S2 and S3 hold A's files, then turn slowloris: each answers B's download,
    sends half of it and then 8 bytes a second. B gives up on each after its progress
    deadline (5 s), keeps what arrived and goes on from another holder with a Range
    request; the stalled friends never hold B's download slots for long, so a file A
    publishes meanwhile reaches B, and once B befriends A everything arrives from A,
    resumed where the slowloris left it."""
    env = peerlab_env
    env.start("syncpeer", ["A", "B", *LIARS])
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.befriend_graph([("A", liar) for liar in LIARS])
    a = env.client("A")
    published = {name: a.publish(name, content) for name, content in OTHERS.items()}
    published["big.bin"] = a.publish("big.bin", BIG)
    for name, content in [*OTHERS.items(), ("big.bin", BIG)]:
        assert_file_synced(env, name, LIARS, content=content, timeout=30)
    for liar in LIARS:
        env.lie(liar, "slowloris")
    adapter.befriend_graph([("B", liar) for liar in LIARS])
    fingerprints = {adapter.fingerprint_of(liar): liar for liar in LIARS}

    def stalls() -> list[dict]:
        return [
            e
            for e in log_events(env, "B", "file_download_failed")
            if "stalled" in e["error"] and e["source"] in fingerprints
        ]

    # big.bin is several chunks: its stall comes after whole chunks arrived, which B keeps
    # (a small file's stall, inside its only chunk, keeps nothing under protocol v1.1).
    big = env.wait_until(
        lambda: [e for e in stalls() if e["name"] == "big.bin"],
        60,
        what="B to give up on a stalled download of big.bin",
    )[0]
    assert big["have"] > 0, "stalled in the middle of the body, not before it"
    adapter.befriend("A", "B")
    a.publish("meanwhile.txt", b"published while three friends stall B's downloads")
    assert_file_synced(env, "meanwhile.txt", ["B"], timeout=30)
    for name, content in [*OTHERS.items(), ("big.bin", BIG)]:
        assert_file_synced(env, name, ["B"], content=content, timeout=60)
    env.wait_until(lambda: env.client("B").status()["in_flight"] == 0, 20, what="B's slots free")
    honest = adapter.fingerprint_of("A")
    resumed = [e for e in log_events(env, "B", "file_download_resumed") if e["source"] == honest]
    assert resumed and all(e["offset"] > 0 for e in resumed), "A was asked for the rest only"
    switched = [e for e in log_events(env, "B", "file_download_resumed") if e["source"] != honest]
    assert switched, "B never went on from another slowloris holder"
    served = log_events(env, "S1", "byzantine_served") + log_events(env, "S2", "byzantine_served")
    assert served, "the slowloris friends were never asked"
