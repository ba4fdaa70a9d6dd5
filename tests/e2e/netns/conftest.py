"""The netns backend's own scenarios: they run on it whatever --peerlab-backend says, as root
or in a user namespace the run entered (--peerlab-backend netns without root); else skip."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerlab.backends import userns
from peerlab.env import Environment

FIXTURES = Path(__file__).parents[2] / "fixtures"


def need_netns() -> None:
    if not userns.privileged():
        pytest.skip("network namespaces need root, or a run with --peerlab-backend netns")


@pytest.fixture
def netns_env(peerlab_seed: int) -> Iterator[Environment]:
    need_netns()
    with Environment("netns", seed=peerlab_seed, backend="netns") as env:
        yield env


@pytest.fixture
def relay(tmp_path: Path) -> Callable[..., Path]:
    """relay(capabilities=[]): the manifest of a small node program (tests/fixtures/relay.py)
    that says who it sees and dials other nodes when asked."""

    def manifest(name: str = "relay", capabilities: tuple[str, ...] = ()) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f"""
[system]
name = "{name}"
[launch]
command = ["{{python}}", "{FIXTURES / "relay.py"}", "{{address}}", "{{port.http}}"]
capabilities = {json.dumps(list(capabilities))}
[ports]
http = 8000
[readiness]
type = "http"
port = "http"
path = "/whoami"
"""
        )
        return path

    return manifest


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
