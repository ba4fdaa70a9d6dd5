"""Protocol-version interoperability (S2-2): syncpeer v1.0 and v1.1 peers in one network.

Each node's version comes from the manifest's [versions] (`--protocol 1.0` or `1.1`):
v1.0 downloads whole envelopes, v1.1 by chunk and still speaks v1.0 to v1.0 peers. Keys,
envelopes, listings and error answers are the same in both; a node that requires a version
its friend cannot speak fails with one logged error on each side, never a silent non-sync.
The tests marked `sim` run on the simulator too: its nodes speak both versions alike.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.node import Node
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced
from peerlab.systems.syncpeer_checks import log_events

pytestmark = pytest.mark.interop

MIXED = {"A": "1.0", "B": "1.0", "C": "1.1", "D": "1.1"}


def _get(node: Node, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Status and JSON body (or bytes) of a GET straight to the node (not through faults)."""
    request = urllib.request.Request(node.direct_url("http", path), headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


@pytest.mark.sim
def test_v1_0_and_v1_1_peers_sync_both_ways(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    adapter = syncpeer_net(4, versions=MIXED)
    everyone = "ABCD"
    sent = {}
    for author in everyone:
        sent[author] = os.urandom(150_000)  # three v1.1 chunks
        others = adapter.fingerprints([n for n in everyone if n != author])
        peerlab_env.client(author).publish(f"from-{author}.bin", sent[author], others)
    for author, content in sent.items():
        readers = [n for n in everyone if n != author]
        assert_file_synced(peerlab_env, f"from-{author}.bin", readers, content=content, timeout=30)

    names = adapter.names_by_fingerprint()
    for node in everyone:
        agreed = peerlab_env.client(node).status()["protocol"]["friends"]
        expected = {
            friend: "1.1" if MIXED[node] == MIXED[friend] == "1.1" else "1.0"
            for friend in everyone
            if friend != node
        }
        assert {names[fp]: v for fp, v in agreed.items()} == expected, node
    # Each download went the way its two ends agreed on, in both directions.
    for node in everyone:
        for done in log_events(peerlab_env, node, "file_download_completed"):
            source = names[done["source"]]
            both_new = MIXED[node] == MIXED[source] == "1.1"
            assert done["protocol"] == ("1.1" if both_new else "1.0"), (node, done)
    assert not any(log_events(peerlab_env, n, "protocol_mismatch") for n in everyone)


def test_keys_envelopes_and_listings_have_one_format_in_both_versions(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    adapter = syncpeer_net(2, versions={"A": "1.0", "B": "1.1"})
    old, new = peerlab_env.node("A"), peerlab_env.node("B")
    cards = [_get(node, "/identity")[1] for node in (old, new)]
    assert (
        set(cards[0])
        == set(cards[1])
        == {
            "name",
            "fingerprint",
            "sign_key",
            "box_key",
            "signature",
        }
    )
    # Each accepted the other's card (befriending verifies it) and each other's envelopes.
    peerlab_env.client("A").publish("old.txt", b"sealed by v1.0", adapter.fingerprints("B"))
    peerlab_env.client("B").publish("new.txt", b"sealed by v1.1", adapter.fingerprints("A"))
    assert_file_synced(peerlab_env, "old.txt", "B", content=b"sealed by v1.0")
    assert_file_synced(peerlab_env, "new.txt", "A", content=b"sealed by v1.1")
    listings = [{e["name"]: e for e in _get(node, "/files")[1]["files"]} for node in (old, new)]
    assert listings[0] == listings[1], "the same envelopes, listed the same way"
    for name in ("old.txt", "new.txt"):
        assert _get(old, f"/files/{name}")[1] == _get(new, f"/files/{name}")[1]
    assert _get(old, "/health")[1]["protocols"] == ["1.0"]
    assert _get(new, "/health")[1]["protocols"] == ["1.0", "1.1"]


def test_error_answers_are_the_same_in_both_versions(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    syncpeer_net(2, versions={"A": "1.0", "B": "1.1"}, edges=[])
    for node in "AB":
        peerlab_env.client(node).publish("here.txt", b"0123456789", "public")
    requests: list[tuple[str, dict[str, str]]] = [
        ("/files/absent.txt", {}),
        ("/files/.hidden", {}),
        ("/files/here.txt", {"If-Match": '"0000"'}),
        ("/files/here.txt", {"Range": "bytes=999999-"}),
        ("/admin/files/absent.txt/content", {}),
    ]
    answers = {}
    for node in "AB":
        answers[node] = []
        for path, headers in requests:
            status, body = _get(peerlab_env.node(node), path, headers)
            assert isinstance(body, dict) and set(body) == {"error"}, (node, path, body)
            answers[node].append(status)
    assert answers["A"] == answers["B"] == [404, 400, 412, 416, 404]


@pytest.mark.sim
def test_a_node_requiring_v1_1_and_a_v1_0_node_each_log_one_clear_error(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """A (v1.0) polls B, which requires v1.1: B refuses with 426 and logs it; A logs B's
    reason. Neither repeats it every round, and nothing syncs silently or otherwise."""
    adapter = syncpeer_net(2, versions={"A": "1.0", "B": "1.1-only"}, edges=[])
    adapter.befriend("A", "B", mutual=False)
    peerlab_env.client("B").publish("unreachable.txt", b"B's file", "public")

    def errors(node: str) -> list[dict[str, Any]]:
        return log_events(peerlab_env, node, "protocol_mismatch")

    peerlab_env.wait_until(
        lambda: errors("A") and errors("B"), 15, what="both sides to log the mismatch"
    )
    polls = peerlab_env.client("A").status()["polls"]
    peerlab_env.wait_until(
        lambda: peerlab_env.client("A").status()["polls"] >= polls + 3,
        15,
        what="three more polls of B by A",
    )
    [on_a], [on_b] = errors("A"), errors("B")
    assert on_a["level"] == on_b["level"] == "error"
    assert "this node speaks 1.0, the peer speaks 1.1" in on_a["error"], "A's own side"
    assert "this node speaks 1.1, the peer speaks 1.0" in on_b["error"], "B's own side"
    assert on_a["friend"] == adapter.fingerprint_of("B")
    status = peerlab_env.client("A").status()
    assert status["protocol"]["mismatches"] == {adapter.fingerprint_of("B"): on_a["error"]}
    assert peerlab_env.client("A").file("unreachable.txt") is None
    assert log_events(peerlab_env, "A", "friend_unreachable") == []


def test_peerlab_up_mixes_versions_per_node(cli: Callable[..., Any]) -> None:
    cli("up", "--peers", "4", "--version", "A,B=1.0", "--version", "C,D=1.1")
    status = json.loads(cli("status", "--json").stdout)
    nodes = status["nodes"] if isinstance(status, dict) else status
    assert {n["name"]: n["version"] for n in nodes} == MIXED
    for name, version in MIXED.items():
        started = [
            json.loads(line)
            for line in Path(next(n["stdout"] for n in nodes if n["name"] == name))
            .read_text()
            .splitlines()
            if '"node_started"' in line
        ]
        speaks = ["1.0"] if version == "1.0" else ["1.0", "1.1"]
        assert started and started[-1]["protocols"] == speaks, name
