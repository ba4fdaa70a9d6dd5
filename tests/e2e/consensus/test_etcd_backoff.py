"""Backoff toward a member that is down (GAIA "exponential backoff"): TC-509. etcd's peers
redial a dead member at a fixed rate, so this is a finding, kept as an expected failure
with its evidence (docs/findings/etcd.md, "Peers redial a dead member at a fixed rate")."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from peerlab.checkers.backoff import backs_off_in_run
from peerlab.env import Environment
from peerlab.systems.etcd import EtcdAdapter
from peerlab.wait import wait_until

pytestmark = [pytest.mark.consensus, pytest.mark.stress]

DOWN_S = 60.0
CAP_S = 30.0  # what a client backing off would reach within a minute


@pytest.mark.xfail(
    strict=True,
    reason="finding: etcd 3.4 peers redial a dead member every ~100 ms for as long as it "
    "is down (docs/findings/etcd.md)",
)
def test_peers_back_off_from_a_dead_member(
    peerlab_env: Environment, etcd_cluster: Callable[[int], EtcdAdapter]
) -> None:
    """TC-509: C is killed for a minute; the attempts A and B make toward it (TCP
    connections through the fabric) must thin out. They do not: the verdict's evidence,
    kept in attempts.json, shows tries every ~100 ms to the end."""
    env = peerlab_env
    etcd_cluster(3)
    env.kill("C")
    deadline = env.history.elapsed() + DOWN_S
    wait_until(lambda: env.history.elapsed() >= deadline, DOWN_S + 5, what="a minute")
    verdict = backs_off_in_run(
        env.net.attempts(dst="C"),
        env.history.entries(),
        env.history.elapsed(),
        cap=CAP_S,
        protocol="tcp",
    )
    env.record_verdict(verdict)
    if env.artifacts is not None:
        env.artifacts.mkdir(parents=True, exist_ok=True)
        (env.artifacts / "attempts.json").write_text(json.dumps(verdict.to_json(), indent=1))
    env.restart("C")
    assert verdict.valid != "unknown", "nobody tried to reach C: nothing to judge"
    assert verdict.ok, f"{verdict.summary}\n{json.dumps(verdict.evidence)[:1500]}"
