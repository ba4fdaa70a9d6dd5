"""Backoff toward a master that is down (GAIA "exponential backoff", Coral "reconnects with
exponential backoff"): TC-609. Sentinels and replicas reach for a dead master at a fixed
rate, so this is a finding, kept as an expected failure with its evidence
(docs/findings/redis-sentinel.md, "A dead master is dialled at a fixed rate")."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from peerlab.checkers.backoff import backs_off_in_run
from peerlab.env import Environment
from peerlab.systems.redis_sentinel import RedisSentinelAdapter
from peerlab.wait import wait_until

pytestmark = [pytest.mark.connectivity, pytest.mark.stress]

DOWN_S = 60.0
CAP_S = 30.0  # what a client backing off would reach within a minute


@pytest.mark.xfail(
    strict=True,
    reason="finding: Redis sentinels and replicas dial a dead master every second for as "
    "long as it is down (docs/findings/redis-sentinel.md)",
)
def test_a_dead_master_is_dialled_less_and_less_often(
    peerlab_env: Environment, redis_sentinel: Callable[[], RedisSentinelAdapter]
) -> None:
    """TC-609: the master is killed for a minute (the sentinels fail over meanwhile); the
    attempts everyone makes toward it must thin out. The evidence is in attempts.json."""
    env = peerlab_env
    redis = redis_sentinel()
    master = redis.master(20)
    env.kill(master)
    deadline = env.history.elapsed() + DOWN_S
    wait_until(lambda: env.history.elapsed() >= deadline, DOWN_S + 5, what="a minute")
    verdict = backs_off_in_run(
        env.net.attempts(dst=master),
        env.history.entries(),
        env.history.elapsed(),
        cap=CAP_S,
        protocol="tcp",
    )
    env.record_verdict(verdict)
    if env.artifacts is not None:
        env.artifacts.mkdir(parents=True, exist_ok=True)
        (env.artifacts / "attempts.json").write_text(json.dumps(verdict.to_json(), indent=1))
    env.restart(master)
    assert verdict.valid != "unknown", f"nobody tried to reach {master}: nothing to judge"
    assert verdict.ok, f"{verdict.summary}\n{json.dumps(verdict.evidence)[:1500]}"
