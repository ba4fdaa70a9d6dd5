"""etcd sessions as leases: kept alive while heartbeats flow, expired after the TTL once they
stop (TC-505)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.etcd import EtcdAdapter, through_elections

pytestmark = pytest.mark.consensus

# Seconds. etcd's floor is 1.5 election timeouts (0.75 s with etcd.toml's 500 ms); 3 s
# leaves room for a slow keep-alive on a loaded runner.
TTL = 3


def test_session_expires_after_ttl_without_heartbeats(
    peerlab_env: Environment, etcd_cluster: Callable[[int], EtcdAdapter]
) -> None:
    """TC-505: a client registers a session (a key on a lease with a TTL) and keeps it
    alive for longer than the TTL: it stays healthy. Then the keep-alives stop: the
    session expires after the TTL (healthy -> expired), measured from the last renewal."""
    etcd = etcd_cluster(3)
    client = etcd.client(peerlab_env.node("A"), timeout=5)
    lease = peerlab_env.run(through_elections(lambda: client.lease_grant(TTL)), 30)
    key = "sessions/worker-1"
    peerlab_env.run(through_elections(lambda: client.put(key, {"worker": 1}, lease=lease)), 30)
    peerlab_env.history.event("session_healthy", "A", lease=lease, ttl=TTL)

    async def get(key: str) -> object:
        return await through_elections(lambda: client.get(key))

    async def keep_alive(seconds: float) -> float:
        """Renew every TTL/4 for `seconds`; the monotonic time of the last renewal."""
        last = time.monotonic()
        deadline = last + seconds
        while time.monotonic() < deadline:
            assert await through_elections(lambda: client.lease_keepalive(lease)) == TTL
            last = time.monotonic()
            assert await get(key) is not None, "the session vanished while kept alive"
            await asyncio.sleep(TTL / 4)
        return last

    # Twice the TTL: only the keep-alives can have kept the session.
    last_renewal = peerlab_env.run(keep_alive(2 * TTL), 4 * TTL)
    assert peerlab_env.run(get(key)) is not None

    async def until_expired(timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await get(key) is None:
                return time.monotonic()
            await asyncio.sleep(0.02)
        raise AssertionError(f"the session outlived its {TTL}s TTL by {timeout - TTL:g}s")

    expired_at = peerlab_env.run(until_expired(TTL + 5), TTL + 10)
    lived = expired_at - last_renewal
    peerlab_env.history.event("session_expired", "A", lease=lease, after_s=round(lived, 3))
    print(f"session expired {lived:.3f}s after its last renewal (TTL {TTL}s)")
    assert peerlab_env.run(through_elections(lambda: client.lease_ttl(lease)), 30) == -1
    # etcd never expires a lease early. Its lessor looks for expired leases every 500 ms
    # and the revocation goes through Raft: on an idle machine expiry comes 0.1 to 0.4 s
    # after the TTL; the bound leaves room for a loaded CI runner.
    assert TTL <= lived < TTL + 3, lived
