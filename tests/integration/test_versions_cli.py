"""`peerlab up --version`: a bad assignment is one line naming the option, before anything
starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_peerlab_up_refuses_bad_versions_before_starting_anything(cli: Callable[..., Any]) -> None:
    unknown = cli("up", "--peers", "2", "--version", "A=2.0", check=False)
    assert unknown.returncode == 2
    assert "--version '2.0': system 'syncpeer' has no such version" in unknown.stderr
    assert "1.0, 1.1, 1.1-only" in unknown.stderr
    outside = cli("up", "--peers", "2", "--version", "C=1.0", check=False)
    assert outside.returncode == 2 and "node 'C', which `up` does not start" in outside.stderr
    assert "not running" in cli("status", check=False).stdout + cli("status", check=False).stderr
