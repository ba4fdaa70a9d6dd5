"""An interrupted download resumes where it stopped and arrives intact (TC-745)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import log_events

from .conftest import wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

SIZE = 3_000_000


@pytest.mark.parametrize("protocol", ["1.1", "1.0"])
def test_cut_download_resumes_intact(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter], protocol: str
) -> None:
    """TC-745: B's download of a 3 MB file from A is cut (both TCP ends reset) a third of the
    way through; B resumes from its partial file with a Range request, and what it ends up
    holding is byte for byte what A published, with nothing rejected on the way.

    Both protocol versions resume their own way: 1.1 by chunk (each chunk of the partial
    file is checked against the friend's chunk list, so a misplaced write heals by itself),
    1.0 by a single Range request from the partial file's length, whose bytes must land at
    that offset (the `drop-range-offset` mutant writes them at the start)."""
    env = peerlab_env
    syncpeer_net(2, [("A", "B")], versions={"A": protocol, "B": protocol})
    env.net.limit(600, src="A", dst="B")  # 5 s for the whole file
    content = os.urandom(SIZE)
    published = env.client("A").publish("big.bin", content)

    def have() -> int:
        return int(env.client("B").status()["partial_bytes"])

    env.wait_until(
        lambda: have() >= SIZE // 3,
        30,
        what="B's download to pass a third",
        describe=lambda: f"B has {have()} bytes",
    )
    assert env.net.reset("A", "B") >= 1, "no connection from B to A was open to cut"
    env.net.clear()
    wait_holds(
        env,
        "B",
        "big.bin",
        lambda f: f["sha256"] == published["sha256"],
        "B to finish the download",
        timeout=30,
    )
    resumed = log_events(env, "B", "file_download_resumed")
    assert resumed and resumed[-1]["offset"] > 0, "B started over instead of resuming"
    assert (
        hashlib.sha256(env.client("B").content("big.bin")).digest()
        == hashlib.sha256(content).digest()
    )
    assert env.client("B").status()["downloads"]["rejected"] == 0
