"""Ordering: creates, updates and deletes that arrive out of order still end in the right
state (TC-711 ... TC-713)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain

from .conftest import versions_held, wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]


def test_delete_before_create(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-711: B hears of the delete (v3) before the create (v1) and C still holds only the
    create when they meet: the create goes to history and the file stays deleted."""
    syncpeer_net(3)
    net, a = peerlab_env.net, peerlab_env.client("A")
    net.partition([["A", "C"], ["B"]])
    a.publish("doc.txt", b"created")
    wait_holds(peerlab_env, "C", "doc.txt", lambda f: f["version"] == 1, "C to get the create")
    net.partition([["A"], ["B"], ["C"]])
    a.publish("doc.txt", b"updated")
    tombstone = a.delete("doc.txt")
    assert tombstone["deleted"] and tombstone["version"] == 3
    net.partition([["A", "B"], ["C"]])
    wait_holds(peerlab_env, "B", "doc.txt", lambda f: f["deleted"], "B to get the delete")
    assert versions_held(peerlab_env, "B", "doc.txt") == {3}, "B saw more than the delete"
    # A goes offline; B can reach C but not the other way round, so C still lists only the
    # create when B asks: the create arrives after the delete.
    peerlab_env.kill("A")
    net.partition([["C"], ["B"]], one_way=True)
    wait_holds(
        peerlab_env,
        "B",
        "doc.txt",
        lambda f: 1 in versions_held(peerlab_env, "B", "doc.txt"),
        "B to receive the old create from C",
    )
    wait_holds(
        peerlab_env,
        "B",
        "doc.txt",
        lambda f: f["deleted"] and f["version"] == 3,
        "B to keep the delete current",
    )
    net.heal()
    peerlab_env.restart("A")
    net.heal()
    verdicts = check_sync(peerlab_env)
    assert all(v.ok for v in verdicts), explain(verdicts)
    for node in "ABC":
        held = peerlab_env.client(node).file("doc.txt")
        assert held is not None and held["deleted"] and held["version"] == 3, (node, held)


def test_update_without_its_base(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-712: B is cut off while A creates and updates a file; B then receives the update
    without ever seeing the create, edits on top of it, and A takes B's edit."""
    syncpeer_net(2)
    with peerlab_env.net.partition([["A"], ["B"]]):
        peerlab_env.client("A").publish("notes.txt", b"base")
        peerlab_env.client("A").publish("notes.txt", b"base + update")
    wait_holds(peerlab_env, "B", "notes.txt", lambda f: f["version"] == 2, "B to get v2")
    assert versions_held(peerlab_env, "B", "notes.txt") == {2}
    edit = peerlab_env.client("B").publish("notes.txt", b"base + update + B's edit")
    assert edit["version"] == 3
    wait_holds(
        peerlab_env,
        "AB",
        "notes.txt",
        lambda f: f["sha256"] == edit["sha256"],
        "A to take B's edit",
    )
    assert peerlab_env.client("A").content("notes.txt") == b"base + update + B's edit"
    verdicts = check_sync(peerlab_env)
    assert all(v.ok for v in verdicts), explain(verdicts)


def test_concurrent_delete_and_update(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-713: A deletes and B updates the same file on two sides of a partition: after the
    heal every peer makes the same one current, by the version rule, and the other is kept;
    a later publish brings the name back everywhere."""
    syncpeer_net(3)
    peerlab_env.client("A").publish("shared.txt", b"v1")
    wait_holds(peerlab_env, "BC", "shared.txt", lambda f: f["version"] == 1, "everyone to get v1")
    with peerlab_env.net.partition([["A"], ["B", "C"]]):
        deleted = peerlab_env.client("A").delete("shared.txt")
        updated = peerlab_env.client("B").publish("shared.txt", b"v2 by B")
    assert deleted["version"] == updated["version"] == 2
    winner = max(
        deleted, updated, key=lambda f: (f["version"], f["timestamp"], f["author"], f["sha256"])
    )
    wait_holds(
        peerlab_env,
        "ABC",
        "shared.txt",
        lambda f: f["sha256"] == winner["sha256"],
        "every peer to pick the same winner",
    )
    verdicts = check_sync(peerlab_env)
    assert all(v.ok for v in verdicts), explain(verdicts)
    back = peerlab_env.client("C").publish("shared.txt", b"v3, back again")
    wait_holds(
        peerlab_env,
        "ABC",
        "shared.txt",
        lambda f: f["sha256"] == back["sha256"] and not f["deleted"],
        "the name to return",
    )
