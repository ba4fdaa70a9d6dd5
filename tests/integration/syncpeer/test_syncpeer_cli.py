"""The syncpeer command line: argument errors, `identity`, and a real `run` stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from peerlab.wait import wait_until
from syncpeer.__main__ import main
from syncpeer.core.identity import IdentityCard
from syncpeer.io.config import parse_run_args
from syncpeer.io.node import main as run_main

SRC = Path(__file__).resolve().parents[3] / "src"


def test_run_arguments_parse_with_defaults(tmp_path: Path) -> None:
    config = parse_run_args(["--data-dir", str(tmp_path), "--name", "n1", "--port", "7000"])
    assert (config.host, config.port, config.poll_interval, config.http_timeout) == (
        "127.0.0.1",
        7000,
        1.0,
        10.0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--name", "n1"],
        ["--data-dir", "d", "--name", "n1", "--poll-interval", "0"],
        ["--data-dir", "d", "--name", "n1", "--advertise", "nohost"],
        ["--data-dir", "d", "--name", "n1", "--log-level", "loud"],
    ],
)
def test_bad_run_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(argv) == 2
    assert "syncpeer run" in capsys.readouterr().err


def test_mutants_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-dir", str(tmp_path), "--name", "n1"]
    assert not parse_run_args(argv).mutants
    monkeypatch.setenv("SYNCPEER_MUTANTS", "stale-etag, trust-size")
    assert list(parse_run_args(argv).mutants) == ["stale-etag", "trust-size"]
    monkeypatch.setenv("SYNCPEER_MUTANTS", "stale-etag,no-such-bug")
    assert run_main(argv) == 2
    error = capsys.readouterr().err
    assert "SYNCPEER_MUTANTS" in error and "no-such-bug" in error
    assert not (tmp_path / "identity.json").exists(), "nothing created on bad input"


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_identity_prints_a_verifiable_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["identity", "--data-dir", str(tmp_path)]) == 1
    assert "no identity" in capsys.readouterr().err
    assert main(["identity", "--data-dir", str(tmp_path), "--name", "n1"]) == 0
    card = IdentityCard.from_json(json.loads(capsys.readouterr().out))
    assert card.name == "n1"
    assert (tmp_path / "identity.json").stat().st_mode & 0o777 == 0o600
    assert main(["identity", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == card.fingerprint


def test_run_serves_until_sigterm_and_exits_0(tmp_path: Path) -> None:
    log_path = tmp_path / "stdout.log"
    command = [sys.executable, "-m", "syncpeer", "run", "--data-dir", str(tmp_path / "d")]
    command += ["--name", "cli-node", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with log_path.open("w") as stdout:
        process = subprocess.Popen(command, stdout=stdout, env=env)
    try:
        deadline = time.monotonic() + 15

        def node_started() -> dict | None:
            assert process.poll() is None, "syncpeer run exited early"
            lines = log_path.read_text().splitlines() if log_path.exists() else []
            events = [json.loads(line) for line in lines]
            return next((e for e in events if e["event"] == "node_started"), None)

        started = wait_until(node_started, max(deadline - time.monotonic(), 1), what="node_started")
        url = f"http://127.0.0.1:{started['port']}/health"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.load(response)["name"] == "cli-node"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert events[-2:] == ["node_stopping", "node_stopped"]
    assert {"ts", "level", "node", "component", "event", "trace_id"} <= set(
        json.loads(log_path.read_text().splitlines()[0])
    )
