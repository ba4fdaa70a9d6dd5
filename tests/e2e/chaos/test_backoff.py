"""Backoff toward peers that are down (GAIA "exponential backoff", Coral "reconnects with
exponential backoff"): while a friend or the bootstrap node is down for a minute, the
attempts the others make toward it, as the fabric saw them, must thin out (TC-746, TC-747).
The attempt times are kept in the test's artifacts (`attempts.json`) and its properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from peerlab.checkers.backoff import backs_off_in_run
from peerlab.checkers.verdict import Verdict
from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain, log_events
from peerlab.wait import wait_until

pytestmark = pytest.mark.chaos

DOWN_S = 60.0
MAX_BACKOFF_S = 8.0  # syncpeer's --max-backoff default
JOIN_RETRY_MAX_S = 30.0  # the DHT's longest pause between joins (syncpeer.core.dht)


def judged(env: Environment, dst: str, protocol: str, cap: float, record_property: Any) -> Verdict:
    """The backoff verdict on every link toward `dst`, recorded, with its evidence kept."""
    attempts = env.net.attempts(dst=dst)
    verdict = backs_off_in_run(
        attempts, env.history.entries(), env.history.elapsed(), cap=cap, protocol=protocol
    )
    env.record_verdict(verdict)
    links = verdict.stats.get("links") or verdict.evidence.get("links", [])
    record_property("attempts", json.dumps(links))
    if env.artifacts is not None:
        env.artifacts.mkdir(parents=True, exist_ok=True)
        (env.artifacts / "attempts.json").write_text(json.dumps(verdict.to_json(), indent=1))
    return verdict


def test_friends_poll_a_dead_friend_less_and_less_often(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter], record_property: Any
) -> None:
    """TC-746: A is killed for a minute. B and C poll it after 1, 2, 4, 8 s and then every
    8 s, not every round (0.5 s); once A is back they sync with it again."""
    env = peerlab_env
    syncpeer_net(3)
    env.kill("A")
    _sleep(env, DOWN_S)
    verdict = judged(env, "A", "tcp", MAX_BACKOFF_S, record_property)
    assert verdict.ok, f"{verdict.summary}\n{json.dumps(verdict.evidence)[:2000]}"
    assert verdict.stats["links_judged"] == 2, verdict.stats
    assert verdict.stats["tries"] < 2 * 15, "a minute at a fixed 0.5 s would be 240 tries"
    env.restart("A")
    env.client("A").publish("back.txt", b"A is back")
    verdicts = check_sync(env)
    assert all(v.ok for v in verdicts), explain(verdicts)


@pytest.mark.sim
def test_a_friend_heard_across_a_one_way_cut_is_asked_early_once(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """B cannot reach A, but A's polls reach B: B hears from A (`X-Syncpeer-From`) and asks
    it at its next round instead of after its backoff, once for the whole cut, not at every
    poll A makes; once the cut heals they sync."""
    env = peerlab_env
    syncpeer_net(2)
    env.net.partition([["B"], ["A"]], one_way=True)
    env.wait_until(lambda: log_events(env, "B", "friend_heard"), 30, what="B to hear from A")
    _sleep(env, 2 * MAX_BACKOFF_S)  # A polls B every 0.5 s meanwhile
    heard = log_events(env, "B", "friend_heard")
    assert len(heard) == 1, f"B cut its backoff short {len(heard)} times in one cut: {heard}"
    assert heard[0]["retry_in_s"] > 0, heard
    assert log_events(env, "A", "friend_heard") == [], "A reaches B: it never gave up on B"
    assert env.client("B").status()["poll_failures"] >= 3, "B never gave up on A"
    env.net.clear()
    env.client("A").publish("healed.txt", b"after the cut")
    verdicts = check_sync(env)
    assert all(v.ok for v in verdicts), explain(verdicts)


def test_a_node_joins_through_a_dead_bootstrap_less_and_less_often(
    peerlab_env: Environment, record_property: Any
) -> None:
    """TC-747: the bootstrap node A is down when D starts. D pings it again after 2, 4, 8,
    16 s (and then every 30 s), not at a fixed rate; when A is back, D joins."""
    env = peerlab_env
    env.start("syncpeer", ["A"], role="bootstrap")
    env.kill("A")
    env.start("syncpeer", ["D"], wait=False)
    wait_until(
        lambda: log_events(env, "D", "dht_bootstrap_unreachable"),
        30,
        what="D to find its bootstrap node down",
    )
    _sleep(env, DOWN_S)
    verdict = judged(env, "A", "udp", JOIN_RETRY_MAX_S, record_property)
    assert verdict.ok, f"{verdict.summary}\n{json.dumps(verdict.evidence)[:2000]}"
    assert verdict.stats["links_judged"] == 1, verdict.stats
    env.restart("A")
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.wait_joined(["D"], timeout=JOIN_RETRY_MAX_S + 20)


def _sleep(env: Environment, seconds: float) -> None:
    """Let `seconds` pass while the nodes retry (nothing to poll for: time is the point)."""
    deadline = env.history.elapsed() + seconds
    env.wait_until(lambda: env.history.elapsed() >= deadline, seconds + 5, what=f"{seconds:g}s")
