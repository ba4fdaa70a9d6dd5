"""`peerlab bench cli`: its figures, on a network it brings up and takes down again."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlab import supervisor
from peerlab.bench.cli import run


def test_bench_cli_measures_and_leaves_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLAB_HOME", str(tmp_path / "home"))
    result = run(runs=1)
    for key in ("python", "help", "status", "net_heal", "net_heal_call"):
        assert result[f"{key}_ms"] > 0, key
    for key in ("help", "status", "net_heal"):  # a Python ran: it took CPU time
        assert result[f"{key}_cpu_ms"] > 0, key
    assert supervisor.list_envs() == []  # taken down and its folder removed
