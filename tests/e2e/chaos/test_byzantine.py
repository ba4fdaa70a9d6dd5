"""Byzantine peers: lies are detected and never stored, equivocation is detected and resolved,
replayed old versions never revert newer state (TC-731 ... TC-736)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain, log_events

from .conftest import wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]


def lie(env: Environment, node: str, mode: str) -> None:
    """Restart `node` lying in `mode` (syncpeer reads SYNCPEER_BYZANTINE at start-up)."""
    env.lie(node, mode)
    assert log_events(env, node, "byzantine_mode")[-1]["mode"] == mode


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("corrupt", "signature"),
        ("lie-size", "listing says"),
        ("lie-hash", "sha256 mismatch"),
        ("lie-timestamp", "does not match the listing"),
    ],
    ids=["corrupt", "lie-size", "lie-hash", "lie-timestamp"],
)
def test_lying_relay(
    peerlab_env: Environment,
    syncpeer_net: Callable[..., SyncpeerAdapter],
    mode: str,
    reason: str,
) -> None:
    """TC-731 ... TC-734: A publishes; B relays it to C lying (forged bytes, wrong size, wrong
    hash, wrong timestamp). C rejects B's offer naming B and stores nothing; once C befriends
    A it holds exactly A's envelope, and B is not asked for those bytes again."""
    env = peerlab_env
    adapter = syncpeer_net(3, [("A", "B"), ("B", "C")])
    lie(env, "B", mode)
    genuine = env.client("A").publish("note.txt", b"what A wrote\n" * 50)
    wait_holds(env, "B", "note.txt", lambda f: f["sha256"] == genuine["sha256"], "B to relay")
    liar = adapter.fingerprint_of("B")

    def rejections() -> list[dict]:
        return [r for r in log_events(env, "C", "file_rejected") if r["source"] == liar]

    found = env.wait_until(
        rejections,
        20,
        what=f"C to reject B's {mode} offer",
        describe=lambda: f"C holds {env.client('C').files()}",
    )
    assert reason in found[0]["reason"], found[0]
    assert env.client("C").file("note.txt") is None, "C stored what the liar served"
    adapter.befriend("A", "C")
    wait_holds(
        env,
        "C",
        "note.txt",
        lambda f: f["sha256"] == genuine["sha256"],
        "C to get A's genuine envelope",
    )
    kept = {v["sha256"] for v in env.client("C").versions("note.txt")}
    assert kept <= {genuine["sha256"]}, f"C keeps bytes A never signed: {kept}"
    assert env.client("C").content("note.txt") == b"what A wrote\n" * 50
    verdicts = check_sync(env, ["A", "C"])
    assert all(v.ok for v in verdicts), explain(verdicts)


def test_equivocation_is_detected(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-735: B signs two different contents under one version and shows each to half of
    its friends. Once the honest peers talk to each other, those that had the loser fetch
    the winner and say so (`file_equivocation`, naming B); all make the same one current
    and the loser is kept."""
    env = peerlab_env
    adapter = syncpeer_net(4, [("B", "A"), ("B", "C"), ("B", "D")])
    lie(env, "B", "selective")
    env.client("B").publish("claim.txt", b"B's one true claim")
    honest = ["A", "C", "D"]
    env.wait_until(
        lambda: all(env.client(n).file("claim.txt") for n in honest),
        20,
        what="every honest peer to receive B's claim",
    )
    seen = {env.client(n).file("claim.txt")["sha256"] for n in honest}
    assert len(seen) == 2, f"B showed everyone the same envelope: {seen}"
    adapter.befriend_graph([("A", "C"), ("C", "D"), ("A", "D")])
    author = adapter.fingerprint_of("B")

    def detections() -> list[dict]:
        return [
            r
            for n in honest
            for r in log_events(env, n, "file_equivocation")
            if r["author"] == author
        ]

    env.wait_until(detections, 20, what="an honest peer to detect B's equivocation")
    verdicts = check_sync(env, honest)
    assert all(v.ok for v in verdicts), explain(verdicts)
    kept = {v["sha256"] for n in honest for v in env.client(n).versions("claim.txt")}
    assert kept | {env.client("A").file("claim.txt")["sha256"]} == seen, "a version was lost"


def test_replayed_old_versions_do_not_revert(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-736: B keeps every old version of A's file and replays the oldest as current. C,
    which holds v3 and never had v1, files the replayed v1 under history: v3 stays current,
    and after A deletes the file it stays deleted, however often B replays v1."""
    env = peerlab_env
    adapter = syncpeer_net(3, [("A", "B")])
    for version in (1, 2, 3):
        meta = env.client("A").publish("ledger.txt", f"ledger v{version}".encode())
        wait_holds(
            env,
            "B",
            "ledger.txt",
            lambda f, m=meta: f["sha256"] == m["sha256"],
            f"B to hold v{version}",
        )
    adapter.befriend("A", "C")
    wait_holds(env, "C", "ledger.txt", lambda f: f["version"] == 3, "C to hold v3 from A")
    lie(env, "B", "replay")
    adapter.befriend("B", "C")  # v1 now reaches C after v3

    def c_versions() -> set[int]:
        return {v["version"] for v in env.client("C").versions("ledger.txt")}

    env.wait_until(
        lambda: 1 in c_versions(),
        20,
        what="C to take B's replayed v1",
        describe=lambda: f"C holds {env.client('C').file('ledger.txt')}",
    )
    wait_holds(env, "AC", "ledger.txt", lambda f: f["version"] == 3, "v3 to stay current")
    tombstone = env.client("A").delete("ledger.txt")
    wait_holds(
        env,
        "AC",
        "ledger.txt",
        lambda f: f["deleted"] and f["version"] == 4,
        "the delete to stand against the replays",
    )
    served = log_events(env, "B", "byzantine_served")
    assert any(r["version"] == 1 for r in served), "B never replayed v1"
    assert tombstone["version"] == 4
    verdicts = check_sync(env, ["A", "C"])
    assert all(v.ok for v in verdicts), explain(verdicts)
