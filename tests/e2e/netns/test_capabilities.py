"""A node runs with no capabilities unless its manifest grants some (`[launch]
capabilities`), and a granted NET_ADMIN lets it make devices in its own namespace only."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from peerlab.env import Environment

from .conftest import get

pytestmark = pytest.mark.netns

NET_ADMIN = 1 << 12


def test_net_admin_only_where_granted(netns_env: Environment, relay: Callable[..., Path]) -> None:
    env = netns_env
    plain = env.start(str(relay("plain")), 1)[0]
    admin = env.start(str(relay("admin", ("NET_ADMIN",))), 1)[0]
    assert int(get(plain.url("http", "/caps"))["effective"], 16) == 0
    assert int(get(admin.url("http", "/caps"))["effective"], 16) == NET_ADMIN
    refused = get(plain.url("http", "/device"))
    assert not refused["ok"] and "not permitted" in refused["error"].lower(), refused
    made = get(admin.url("http", "/device"))
    assert made["ok"], made
    # The device is in the node's namespace, not on the host.
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert "relay0" not in host.stdout
    inside = subprocess.run(
        ["ip", "-n", env.backend.hub.netns(admin.index), "-o", "link"],  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        check=True,
    )
    assert "relay0" in inside.stdout
