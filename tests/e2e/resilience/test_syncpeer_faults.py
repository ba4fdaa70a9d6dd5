"""syncpeer under network faults injected by the fabric (TC-004, TC-101 ... TC-105), on real
processes and on the simulator (the same faults, on simulated links)."""

import hashlib
import json
import os

import pytest

from peerlab.env import Environment
from peerlab.fabric.spec import ToxicSpec
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced

pytestmark = [pytest.mark.resilience, pytest.mark.sim]


def _events(env: Environment, node: str, event: str, name: str | None = None) -> list[dict]:
    found = []
    for line in env.node(node).logs(100_000):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event and (name is None or record.get("name") == name):
            found.append(record)
    return found


def _logged(
    env: Environment, node: str, event: str, name: str | None = None, count: int = 1
) -> list[dict]:
    """The `event` lines of `node`'s log, once there are `count` of them. A node logs a
    download's end after the file is in its store, and its log reaches us later still (a
    container's through the engine): a file that synced is not yet a line that says so."""
    return env.wait_until(
        lambda: found if len(found := _events(env, node, event, name)) >= count else None,
        timeout=30,
        what=f"{count} {event} line(s) of {name or 'any file'} in {node}'s log",
    )


def _mesh(env: Environment, names: str) -> SyncpeerAdapter:
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.befriend_graph([(a, b) for i, a in enumerate(names) for b in names[i + 1 :]])
    return adapter


def test_version_conflict(peerlab_env: Environment) -> None:
    """TC-004: A|B partitioned, both edit shared.txt, heal: both versions kept, the documented
    rule (greatest version, then timestamp, then author fingerprint) picks the current one."""
    peerlab_env.start("syncpeer", 2)
    adapter = _mesh(peerlab_env, "AB")
    a, b = peerlab_env.client("A"), peerlab_env.client("B")
    fa, fb = adapter.fingerprints(["A"])[0], adapter.fingerprints(["B"])[0]
    a.publish("shared.txt", b"version 1 by A", [fb])
    assert_file_synced(peerlab_env, "shared.txt", ["B"], content=b"version 1 by A")

    with peerlab_env.net.partition([["A"], ["B"]]):
        meta_a = a.publish("shared.txt", b"version 2a by A", [fb])
        meta_b = b.publish("shared.txt", b"version 2b by B", [fa])
        assert meta_a["version"] == meta_b["version"] == 2
        assert a.file("shared.txt")["sha256"] == meta_a["sha256"]
        assert b.file("shared.txt")["sha256"] == meta_b["sha256"]

    def rank(meta: dict) -> tuple:
        return (meta["version"], meta["timestamp"], meta["author"])

    winner, loser = sorted([meta_a, meta_b], key=rank, reverse=True)
    peerlab_env.wait_until(
        lambda: all(
            peerlab_env.client(n).file("shared.txt")["sha256"] == winner["sha256"] for n in "AB"
        ),
        20,
        what="A and B to agree on the current shared.txt",
    )
    kept = {v["sha256"] for n in "AB" for v in peerlab_env.client(n).versions("shared.txt")}
    assert loser["sha256"] in kept, "the losing edit was lost"
    loser_node = "A" if loser["author"] == fa else "B"
    assert loser["sha256"] in {
        v["sha256"] for v in peerlab_env.client(loser_node).versions("shared.txt")
    }


def test_peer_crash_mid_transfer(peerlab_env: Environment) -> None:
    """TC-101: A is killed about half-way through B's download of a large file; after A
    restarts, B resumes with a Range request and the SHA-256 matches; C is unaffected."""
    peerlab_env.start("syncpeer", 3)
    adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
    adapter.befriend("A", "B")
    adapter.befriend("B", "C")
    # A SIGKILLed process's kernel still sends what sits in its socket buffer (up to 4 MiB
    # on loopback), so the file must be large enough that much more than that is unsent.
    content = os.urandom(16_000_000)
    peerlab_env.net.limit(4000, src="A", dst="B")  # about 4 s for the whole envelope
    peerlab_env.client("A").publish("big.bin", content, adapter.fingerprints(["B"]))

    def partial_bytes() -> int:
        return int(peerlab_env.client("B").status()["partial_bytes"])

    peerlab_env.wait_until(
        lambda: partial_bytes() >= 6_000_000,
        30,
        what="B's download to pass ~40%",
        describe=lambda: f"B holds {partial_bytes()} bytes",
    )
    peerlab_env.kill("A")
    cut_at = partial_bytes()
    assert 0 < cut_at < len(content)

    peerlab_env.client("C").publish("from-c.txt", b"C keeps working", "public")
    assert_file_synced(peerlab_env, "from-c.txt", ["B"], content=b"C keeps working")
    assert peerlab_env.node("C").state == "running"

    peerlab_env.net.clear()
    peerlab_env.restart("A")
    assert_file_synced(peerlab_env, "big.bin", ["B"], content=content, timeout=30)
    _logged(peerlab_env, "B", "file_download_completed", "big.bin")  # the resume is before it
    resumed = _events(peerlab_env, "B", "file_download_resumed", "big.bin")
    assert resumed and resumed[-1]["offset"] > 0, "B started over instead of resuming"
    assert (
        hashlib.sha256(peerlab_env.client("B").content("big.bin")).hexdigest()
        == hashlib.sha256(content).hexdigest()
    )


def test_split_brain(peerlab_env: Environment) -> None:
    """TC-102: A-B | C-D; each side publishes; after heal everyone has both within 60 s."""
    peerlab_env.start("syncpeer", 4)
    _mesh(peerlab_env, "ABCD")
    with peerlab_env.net.partition([["A", "B"], ["C", "D"]]):
        peerlab_env.client("A").publish("left.txt", b"from the left", "public")
        peerlab_env.client("C").publish("right.txt", b"from the right", "public")
        assert_file_synced(peerlab_env, "left.txt", ["B"], content=b"from the left")
        assert_file_synced(peerlab_env, "right.txt", ["D"], content=b"from the right")
        for node in "CD":
            assert peerlab_env.client(node).file("left.txt") is None, f"{node} crossed the cut"
        for node in "AB":
            assert peerlab_env.client(node).file("right.txt") is None, f"{node} crossed the cut"
    healed = peerlab_env.clock.monotonic()
    assert_file_synced(peerlab_env, "left.txt", "CD", content=b"from the left", timeout=60)
    assert_file_synced(peerlab_env, "right.txt", "AB", content=b"from the right", timeout=60)
    assert peerlab_env.clock.monotonic() - healed < 60


def test_high_latency(peerlab_env: Environment, record_property) -> None:
    """TC-103: 500 ms +/- 100 ms on every link: 10 files sync, no timeout errors; the measured
    latency is recorded."""
    peerlab_env.start("syncpeer", 2)
    adapter = _mesh(peerlab_env, "AB")
    peerlab_env.net.latency(500, 100)
    started = peerlab_env.clock.monotonic()
    for i in range(10):
        peerlab_env.client("A").publish(
            f"slow-{i}.txt", f"file {i}".encode(), adapter.fingerprints(["B"])
        )
    for i in range(10):
        assert_file_synced(
            peerlab_env, f"slow-{i}.txt", ["B"], content=f"file {i}".encode(), timeout=60
        )
    completed = _logged(peerlab_env, "B", "file_download_completed", count=10)
    durations = [r["duration_ms"] for r in completed]
    assert len(durations) == 10
    # A download is one request and its answer: at least one delay each way.
    assert min(durations) >= 700, durations
    failures = [
        r
        for r in _events(peerlab_env, "B", "file_download_failed")
        if "imeout" in str(r.get("error"))
    ]
    assert not failures, failures
    record_property("download_ms_median", sorted(durations)[5])
    record_property("sync_seconds_10_files", round(peerlab_env.clock.monotonic() - started, 2))


def test_bandwidth_cap(peerlab_env: Environment, record_property) -> None:
    """TC-104: 50 KB/s from A to B: the transfer takes no less than size/rate (15% slack),
    under exactly one cap."""
    peerlab_env.start("syncpeer", 2)
    adapter = _mesh(peerlab_env, "AB")
    rate_kb_s = 50
    peerlab_env.net.limit(rate_kb_s, src="A", dst="B")
    content = os.urandom(100_000)
    peerlab_env.client("A").publish("capped.bin", content, adapter.fingerprints(["B"]))
    assert_file_synced(peerlab_env, "capped.bin", ["B"], content=content, timeout=30)
    done = _logged(peerlab_env, "B", "file_download_completed", "capped.bin")[0]
    expected_s = done["bytes"] / (rate_kb_s * 1000)
    measured_s = done["duration_ms"] / 1000
    record_property("expected_s", round(expected_s, 3))
    record_property("measured_s", round(measured_s, 3))
    # Never faster than the cap allows: no machine load makes a transfer faster. Slower only
    # as a loaded machine makes it (2.2 times at load 17 on 2 cores), so the cap applied
    # once is checked where it is set, not timed: B's connection to A carries A's data
    # under the one cap. Five times slower is a broken pacer, not a busy machine; the cap's
    # accuracy (within 1 %) is measured by `peerlab bench proxy`.
    assert 0.85 * expected_s <= measured_s < 5 * expected_s, (measured_s, expected_s)
    links = {(r["src"], r["dst"], r["protocol"]): r for r in peerlab_env.net.links()["links"]}
    assert links[("B", "A", "tcp")]["faults"] == ["bandwidth:A->B"], links


def test_loss_and_slicing(peerlab_env: Environment) -> None:
    """TC-105: 10% loss and sliced segments on every link: 100 small files all sync."""
    peerlab_env.start("syncpeer", 2)
    adapter = _mesh(peerlab_env, "AB")
    peerlab_env.net.loss(10)
    peerlab_env.net.add_toxic(
        None,
        None,
        ToxicSpec.from_dict(
            {
                "type": "slicer",
                "stream": "downstream",
                "attributes": {"average_size": 64, "size_variation": 32, "delay": 100},
            }
        ).to_dict(),
    )
    recipients = adapter.fingerprints(["B"])
    for i in range(100):
        peerlab_env.client("A").publish(f"small-{i:03}.txt", f"small {i}".encode(), recipients)

    def missing() -> list[str]:
        have = {f["name"] for f in peerlab_env.client("B").files() if f.get("decryptable")}
        return [f"small-{i:03}.txt" for i in range(100) if f"small-{i:03}.txt" not in have]

    peerlab_env.wait_until(
        lambda: not missing(),
        90,
        what="100 files to reach B through loss and slicing",
        describe=lambda: f"{len(missing())} missing, e.g. {missing()[:3]}",
    )
