"""`peerlab nemesis` against a network run by the supervisor (TC-753)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from peerlab.nemesis.schedule import Schedule
from peerlab.testing import require_libfaketime

pytestmark = pytest.mark.chaos

Cli = Callable[..., subprocess.CompletedProcess]


def test_nemesis_cli(cli: Cli, tmp_path: Path) -> None:
    """TC-753: `nemesis plan` shows what `nemesis run` applies (same seed, same schedule, in
    the history); the run heals everything; `skew` moves a peer's clock and `byzantine`
    restarts a peer lying; bad kinds are usage errors (exit 2)."""
    require_libfaketime()
    cli("up", "--peers", "3", "--seed", "4242")
    options = ["--duration", "4s", "--kinds", "kill,pause,latency,partition", "--every", "0.5s"]
    plan = json.loads(cli("nemesis", "plan", *options, "--json").stdout)
    expected = Schedule.generate(
        4242, ["A", "B", "C"], 4.0, ["kill", "pause", "latency", "partition"], mean_gap=0.5
    )
    assert plan["fingerprint"] == expected.fingerprint() and plan["steps"]

    lines = cli("nemesis", "run", *options, "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    applied = [r for r in records if r.get("action") == "apply"]
    assert applied and records[-1]["report"]["fingerprint"] == plan["fingerprint"]
    status = json.loads(cli("status", "--json").stdout)
    assert all(n["state"] == "running" for n in status["nodes"]), status["nodes"]
    assert json.loads(cli("net", "show", "--json").stdout).get("faults") in ([], None)
    history = [
        json.loads(line)
        for line in (Path(status["workdir"]) / "history.jsonl").read_text().splitlines()
    ]
    schedules = [e for e in history if e.get("f") == "nemesis_schedule"]
    assert schedules and schedules[-1]["data"]["fingerprint"] == plan["fingerprint"]
    assert any(
        e["type"] == "fault" and e["value"].get("kind") in ("kill", "pause") for e in history
    ) or not any(s["fault"]["kind"] in ("kill", "pause") for s in plan["steps"])

    assert "-3600" in cli("nemesis", "skew", "A", "--by", "-1h").stdout
    note = tmp_path / "note.txt"
    note.write_text("written an hour ago, says A's clock\n")
    cli("file", "add", "A", str(note))
    [entry] = [
        f for f in json.loads(cli("file", "list", "A", "--json").stdout) if f["name"] == "note.txt"
    ]
    assert abs(entry["timestamp"] - (time.time() - 3600)) < 120, entry
    assert "lying" in cli("nemesis", "byzantine", "B", "corrupt").stdout
    assert "honest" in cli("nemesis", "byzantine", "B", "off").stdout

    bad = cli("nemesis", "plan", "--kinds", "earthquake", check=False)
    assert bad.returncode == 2 and "unknown fault kind 'earthquake'" in bad.stderr
