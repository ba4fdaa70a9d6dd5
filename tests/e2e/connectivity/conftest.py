"""Redis with Sentinel scenarios: the default layout, started and fully discovered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.systems.redis_sentinel import RedisSentinelAdapter
from peerlab.testing import require_program


@pytest.fixture
def redis_sentinel(peerlab_env: Environment) -> Callable[[], RedisSentinelAdapter]:
    """Start 1 master, 2 replicas and 3 sentinels; wait until everyone knows everyone."""

    def start() -> RedisSentinelAdapter:
        require_program("redis-server", "redis-server")
        require_program("redis-sentinel", "redis-sentinel")
        peerlab_env.start("redis-sentinel")
        redis = RedisSentinelAdapter.of(peerlab_env, "redis-sentinel")
        redis.wait_settled(redis.master(20), 30)
        return redis

    return start


@pytest.fixture
def keep_json(peerlab_env: Environment) -> Callable[[str, Any], None]:
    """Keep a figure next to the test's artifacts (peerlab-results/<test>/)."""

    def save(name: str, data: Any) -> None:
        if peerlab_env.artifacts is not None:
            peerlab_env.artifacts.mkdir(parents=True, exist_ok=True)
            (peerlab_env.artifacts / name).write_text(json.dumps(data, indent=2, default=str))

    return save
