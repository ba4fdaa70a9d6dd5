"""Zombie files and phantom deletes (syft 2.2 "create after delete", "phantom deletes"; 4.2
"zombie files"): A deletes a file and re-creates it one version higher; B receives the old
tombstone after the re-created file (held back by a partition, or replayed by a lying
peer, or reloaded from its own `.versions/` after a restart). The re-created file must
survive everywhere: a tombstone removes only the versions it supersedes (TC-714, TC-715)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain, log_events

from .conftest import versions_held, wait_holds

pytestmark = pytest.mark.chaos

NAME = "plan.txt"
RECREATED = b"the plan, written again after it was deleted"


def recreated(held: dict) -> bool:
    return held["version"] == 3 and not held["deleted"]


def restart_if(env: Environment, node: str, restart: bool) -> None:
    if restart:
        env.restart(node)


def assert_recreated_everywhere(env: Environment, nodes: str) -> None:
    verdicts = check_sync(env, list(nodes))
    assert all(v.ok for v in verdicts), explain(verdicts)
    for node in nodes:
        held = env.client(node).file(NAME)
        assert held is not None and recreated(held), (node, held)
        assert env.client(node).content(NAME) == RECREATED


@pytest.mark.parametrize("restart", [False, True], ids=["live", "restarted"])
@pytest.mark.parametrize("order", ["tombstone-late", "tombstone-first"])
def test_recreated_file_survives_its_old_tombstone(
    peerlab_env: Environment,
    syncpeer_net: Callable[..., SyncpeerAdapter],
    order: str,
    restart: bool,
) -> None:
    """TC-714: A publishes v1, deletes it (v2, a tombstone) while only C hears, and
    re-creates it (v3). A partition holds the tombstone back at C. B receives v3 and then
    the tombstone from C (tombstone-late: A down, C unable to reach B, so C still lists
    the tombstone), or the tombstone and then v3 (tombstone-first);
    with `restarted`, B restarts between the two and again at the end, reloading every
    version from its data dir. B, and everyone, ends with v3; B keeps the tombstone in
    history."""
    env = peerlab_env
    syncpeer_net(3)
    net, a = env.net, env.client("A")
    a.publish(NAME, b"the first plan")
    wait_holds(env, "BC", NAME, lambda f: f["version"] == 1, "everyone to get v1")
    net.partition([["A", "C"], ["B"]])
    assert a.delete(NAME)["version"] == 2
    wait_holds(env, "C", NAME, lambda f: f["deleted"], "C to get the tombstone")
    if order == "tombstone-first":
        net.partition([["B", "C"], ["A"]])
        wait_holds(env, "B", NAME, lambda f: f["deleted"], "B to get the tombstone first")
        restart_if(env, "B", restart)
        net.partition([["A", "B"], ["C"]])
        assert a.publish(NAME, RECREATED)["version"] == 3
        wait_holds(env, "B", NAME, recreated, "B to get the re-created file")
    else:
        net.partition([["A", "B"], ["C"]])
        assert a.publish(NAME, RECREATED)["version"] == 3
        wait_holds(env, "B", NAME, recreated, "B to get the re-created file first")
        assert versions_held(env, "B", NAME) == {1, 3}, "B saw the tombstone too early"
        restart_if(env, "B", restart)
        # A goes down and B can reach C but not the other way round: C cannot take v3
        # from B first, so it still lists the tombstone as current when B asks.
        env.kill("A")
        net.partition([["C"], ["B"]], one_way=True)
        wait_holds(
            env,
            "B",
            NAME,
            lambda f: 2 in versions_held(env, "B", NAME),
            "B to receive the old tombstone from C",
        )
        wait_holds(env, "B", NAME, recreated, "v3 to stay current at B")
        env.restart("A")
    restart_if(env, "B", restart)  # B reloads v1, the tombstone and v3 from its data dir
    net.heal()
    assert_recreated_everywhere(env, "ABC")
    assert versions_held(env, "B", NAME) == {1, 2, 3}
    deletes = [e for e in log_events(env, "B", "file_download_completed") if e["deleted"]]
    placement = "current" if order == "tombstone-first" else "history"
    assert [e["placement"] for e in deletes] == [placement]


def test_replayed_tombstone_does_not_delete_the_recreated_file(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-715: C joined after v1, so the tombstone (v2) is the oldest version it holds;
    lying in `replay` mode it lists and serves that tombstone as current, round after
    round. B, which was away while A deleted and re-created the file and so never saw the
    tombstone, takes it from C under history, keeps v3 current, also after a restart."""
    env = peerlab_env
    adapter = syncpeer_net(3, [("A", "B")])
    a = env.client("A")
    a.publish(NAME, b"the first plan")
    wait_holds(env, "B", NAME, lambda f: f["version"] == 1, "B to get v1")
    with env.net.partition([["A", "C"], ["B"]]):
        a.delete(NAME)
        adapter.befriend("A", "C")
        wait_holds(env, "C", NAME, lambda f: f["deleted"], "C to get the tombstone, its first")
        a.publish(NAME, RECREATED)
        wait_holds(env, "C", NAME, recreated, "C to get the re-created file")
    wait_holds(env, "B", NAME, recreated, "B to get the re-created file")
    assert versions_held(env, "B", NAME) == {1, 3}
    env.lie("C", "replay")
    adapter.befriend("B", "C")
    wait_holds(
        env,
        "B",
        NAME,
        lambda f: 2 in versions_held(env, "B", NAME),
        "B to take the tombstone C replays",
    )
    env.restart("B")
    served = [e for e in log_events(env, "C", "byzantine_served") if e["version"] == 2]
    assert served, "C never replayed the tombstone"
    held = env.client("B").file(NAME)
    assert held is not None and recreated(held), held
    assert_recreated_everywhere(env, "AB")
