"""A frozen peer must not slow everyone else down (TC-744)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter

from .conftest import wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

# syncpeer polls every 0.5 s here; a file should cross a healthy link in well under this.
HEALTHY_SECONDS = 3.0


def test_paused_friend_does_not_stall_the_others(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-744: C is frozen (SIGSTOP: its sockets accept, nothing answers). A's files still
    reach B within a few poll intervals, each of them, though B's polls of C hang until
    its HTTP timeout (10 s)."""
    env = peerlab_env
    syncpeer_net(3)
    env.pause("C")
    slowest = 0.0
    for i in range(4):
        published = env.client("A").publish(f"while-c-sleeps-{i}.txt", f"file {i}".encode())
        began = env.clock.monotonic()
        wait_holds(
            env,
            "B",
            published["name"],
            lambda f, p=published: f["sha256"] == p["sha256"],
            f"B to receive file {i} while C is frozen",
            timeout=15,
        )
        slowest = max(slowest, env.clock.monotonic() - began)
        env.clock.sleep(0.7)  # publish at different points of B's poll rounds
    env.resume("C")
    assert slowest < HEALTHY_SECONDS, f"a file took {slowest:.1f}s to cross a healthy link"
