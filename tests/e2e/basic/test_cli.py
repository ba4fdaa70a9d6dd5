"""The interactive face: separate `peerlab` commands act on one background network."""

import json
from pathlib import Path

import psutil
import pytest

from peerlab.testing import wait_until


def _pids(status: dict) -> list[int]:
    return [n["pid"] for n in status["nodes"] if n.get("pid")]


def test_cli_session(cli, tmp_path: Path) -> None:
    """up, status, friend add, file add, file cat on another peer, peer kill/restart, down."""
    cli("up", "--peers", "3")
    status = json.loads(cli("status", "--json").stdout)
    assert [n["name"] for n in status["nodes"]] == ["A", "B", "C"]
    assert all(n["state"] == "running" for n in status["nodes"])
    supervisor_pid = json.loads((tmp_path / "home/envs/default/state.json").read_text())["pid"]

    cli("friend", "add", "A", "B")
    friends = json.loads(cli("friend", "list", "A", "--json").stdout)
    assert [f["peer"] for f in friends] == ["B"]
    note = tmp_path / "note.txt"
    note.write_text("a note from A for B\n")
    cli("file", "add", "A", str(note), "--for", "B")
    text = wait_until(
        lambda: cli("file", "cat", "B", "note.txt", check=False).stdout,
        15,
        what="B to be able to read note.txt",
    )
    assert text == "a note from A for B\n"
    refused = cli("file", "cat", "C", "note.txt", check=False)
    assert refused.returncode == 2, refused.stderr  # the user's mistake, said in words
    assert "peer C has no file named 'note.txt'" in refused.stderr
    assert "HTTP" not in refused.stderr

    old_pid = next(n["pid"] for n in status["nodes"] if n["name"] == "A")
    assert "killed" in cli("peer", "kill", "A").stdout
    assert "running" in cli("peer", "restart", "A").stdout
    new_status = json.loads(cli("status", "--json").stdout)
    a = next(n for n in new_status["nodes"] if n["name"] == "A")
    assert a["state"] == "running" and a["pid"] != old_pid and a["restarts"] == 1
    assert cli("file", "cat", "A", "note.txt").stdout == "a note from A for B\n"

    pids = [*_pids(new_status), supervisor_pid]
    cli("down")
    wait_until(
        lambda: (
            not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
        ),
        15,
        what="every process of the network to exit",
    )
    assert cli("status", check=False).returncode == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["up", "--system", "nosuch"], "unknown system 'nosuch'"),
        (["up", "--peers", "0"], "--peers"),
        (["peer", "kill", "A"], "not running"),
        (["net", "latency", "fast"], "fast"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(cli, args: list[str], needle: str) -> None:
    result = cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_peer_on_a_running_network(cli) -> None:
    cli("up", "--peers", "2")
    result = cli("peer", "kill", "Z", check=False)
    assert result.returncode == 2
    assert "unknown peer 'Z'" in result.stderr and "A, B" in result.stderr
    assert "running" in cli("status").stdout


def _processes_with_home(home: Path) -> list[int]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PEERLAB_HOME") == str(home):
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize(
    ("body", "field", "fix"),
    [
        ('[launch]\ncommand = "not-a-list"\n', "launch.command", "command = ["),
        ('[launch]\ncommand = ["true"]\n[stop]\nsignal = "SIGFOO"\n', "stop.signal", "SIGTERM"),
        ('[launch]\ncommand = ["true"]\n[readyness]\ntype = "none"\n', "readyness", "readiness"),
    ],
)
def test_a_bad_manifest_exits_2_with_one_line_and_starts_nothing(
    cli, tmp_path: Path, body: str, field: str, fix: str
) -> None:
    manifest = tmp_path / "bad.toml"
    manifest.write_text(f'[system]\nname = "bad"\n{body}')
    result = cli("up", "--system", str(manifest), check=False)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {manifest}: field '{field}' ")
    assert "(fix: " in line and fix in line.partition("(fix: ")[2]
    assert not (tmp_path / "home").exists()  # no environment folder, no supervisor state
    assert _processes_with_home(tmp_path / "home") == []
