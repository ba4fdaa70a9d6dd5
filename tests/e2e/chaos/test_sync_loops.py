"""Sync loops: a change reaches every peer once and never comes back (TC-701 ... TC-704)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.checkers import no_sync_loops
from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain, friend_graph, transfers

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

QUIET_SECONDS = 2.0  # how long the network must stay still once converged


def assert_quiet(env: Environment, seconds: float = QUIET_SECONDS) -> None:
    """Poll for `seconds` that no peer downloads anything more: a loop never settles."""
    before = len(transfers(env))
    deadline = env.clock.monotonic() + seconds
    while env.clock.monotonic() < deadline:
        now = len(transfers(env))
        assert now == before, f"{now - before} more download(s) after the peers converged"
        env.clock.sleep(0.2)


def assert_no_loops(env: Environment, by: str = "content") -> None:
    verdicts = check_sync(env, loops_by=by)  # type: ignore[arg-type]
    assert all(v.ok for v in verdicts), explain(verdicts)
    assert_quiet(env)
    verdict = no_sync_loops(transfers(env, by=by), friend_graph(env))  # type: ignore[arg-type]
    assert verdict.ok, explain([verdict])


def test_ping_pong(peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]) -> None:
    """TC-701: A <-> B, both write: every change crosses once, none comes back (by content)."""
    syncpeer_net(2)
    for i in range(3):
        peerlab_env.client("A").publish(f"a-{i}.txt", f"from A {i}".encode())
    for i in range(2):
        peerlab_env.client("B").publish(f"b-{i}.txt", f"from B {i}".encode())
    peerlab_env.client("A").publish("a-0.txt", b"from A, edited")
    assert_no_loops(peerlab_env)


def test_triangle(peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]) -> None:
    """TC-702: friends A-B, B-C, C-A; a change from A reaches B and C once each and never
    returns to A around the triangle."""
    syncpeer_net(3, [("A", "B"), ("B", "C"), ("C", "A")])
    peerlab_env.client("A").publish("round.txt", b"around the triangle")
    peerlab_env.client("B").publish("other.txt", b"from B")
    assert_no_loops(peerlab_env)
    into_a = [t for t in transfers(peerlab_env) if t["node"] == "A" and t["name"] == "round.txt"]
    assert not into_a, f"A fetched its own change back: {into_a}"


def test_echo_along_a_chain(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-703: a line A-B-C-D, writes at both ends and in the middle: relayed changes are
    never echoed back towards where they came from."""
    syncpeer_net(4, [("A", "B"), ("B", "C"), ("C", "D")])
    peerlab_env.client("A").publish("west.txt", b"from the west end")
    peerlab_env.client("D").publish("east.txt", b"from the east end")
    peerlab_env.client("B").publish("middle.txt", b"from the middle")
    assert_no_loops(peerlab_env)


def test_metadata_resave(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-704: A re-saves a file with the same content (a metadata-only change): each peer
    fetches the new version once, and nobody answers with versions of its own."""
    syncpeer_net(3)
    content = b"unchanged content"
    first = peerlab_env.client("A").publish("same.txt", content)
    verdicts = check_sync(peerlab_env, loops_by="envelope")
    assert all(v.ok for v in verdicts), explain(verdicts)
    again = peerlab_env.client("A").publish("same.txt", content)
    assert again["version"] == first["version"] + 1
    assert_no_loops(peerlab_env, by="envelope")
    for node in "ABC":
        held = peerlab_env.client(node).file("same.txt")
        assert held is not None and held["version"] == again["version"], (node, held)
