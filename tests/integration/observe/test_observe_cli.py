"""The observing commands on a live network: logs, file watch, status --watch, snapshots,
scenarios, results and the report, each as a separate `peerlab` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from peerlab.testing import wait_until


class Running:
    """A `peerlab` command that keeps running (a follow); its output is collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "peerlab", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 20) -> None:
        wait_until(
            lambda: any(text in line for line in self.lines),
            timeout,
            what=f"{text!r} in the output",
            describe=lambda: "".join(self.lines)[-2000:],
        )

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(20)
        self._reader.join(5)
        return code


@pytest.fixture
def cli(tmp_path: Path):
    home = tmp_path / "home"
    env = {**os.environ, "PEERLAB_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "peerlab", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"peerlab {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    run.follow = lambda *args: Running(list(args), env, tmp_path)  # type: ignore[attr-defined]
    yield run
    run("down", "--all", check=False)


@pytest.mark.slow
def test_observing_a_live_network(cli, tmp_path: Path) -> None:
    cli("up", "--peers", "4")
    follow = cli.follow("logs", "--follow", "--node", "B")
    watch = cli.follow("file", "watch")
    dashboard = cli.follow("status", "--watch", "--interval", "0.3")
    cli("friend", "add", "A", "B")
    note = tmp_path / "note.txt"
    note.write_text("for B\n")
    cli("file", "add", "A", str(note), "--for", "B")
    follow.wait_for("file_download_completed")
    watch.wait_for("completed note.txt v1 from A")
    assert any("published note.txt v1 for 2 recipients" in line for line in watch.lines)
    assert not any(line.split()[1:2] == ["C"] for line in follow.lines if line.strip()), (
        "--node B shows no other node's lines"
    )
    cli("peer", "kill", "C")
    dashboard.wait_for("killed")
    for running in (follow, watch, dashboard):
        assert running.interrupt() == 0

    lines = [
        json.loads(line) for line in cli("logs", "--json", "--event", "file_*").stdout.splitlines()
    ]
    assert [(e["node"], e["event"]) for e in lines if e["event"].startswith("file_download")] == [
        ("B", "file_download_started"),
        ("B", "file_download_completed"),
    ]
    trace = lines[-1]["trace_id"]
    traced = cli("logs", "--trace", trace).stdout
    assert "file_published" in traced and "file_download_completed" in traced, (
        "one trace id follows the publish to the download"
    )
    assert "node_killed" in cli("logs", "--grep", "node_(killed|restarted)").stdout
    assert cli("logs", "--since", "1h", "--tail", "3").stdout.count("\n") == 3
    assert cli("logs", "--since", "tomorrow", check=False).returncode == 2

    saved = cli("snapshot", "save", "with-note").stdout
    assert "4 peers" in saved
    cli("peer", "restart", "C")
    assert "C is killed" not in cli("status").stdout
    restored = cli("snapshot", "restore", "with-note").stdout
    assert "left stopped, as they were: C" in restored
    assert "with-note" in cli("snapshot", "list").stdout

    scenario = cli(
        "scenario",
        "run",
        "crash-during-sync",
        "--param",
        "size=800000",
        "--param",
        "rate_kb_s=200",
        "--html",
        check=False,
    )
    assert scenario.returncode == 0, scenario.stdout + scenario.stderr
    assert "▶ killing B (SIGKILL) in the middle of the download" in scenario.stdout
    assert "scenario crash-during-sync passed" in scenario.stdout
    folder = next((tmp_path / "peerlab-results").glob("scenario-crash-during-sync-*"))
    result = json.loads((folder / "result.json").read_text())
    assert result["outcome"] == "passed" and len(result["verdicts"]) == 2
    assert (folder / "report.html").exists() and (folder / "junit.xml").exists()
    assert (folder / "nodes" / "B" / "stdout.log").exists()

    summary = cli("report").stdout
    assert "PASSED scenario crash-during-sync" in summary and "replay:" in summary
    saved_run = cli("results", str(tmp_path / "by-hand"), "--html").stdout
    assert "report:" in saved_run and (tmp_path / "by-hand" / "report.html").exists()
    assert "file_download_completed" in cli("logs", "--run", str(folder)).stdout
