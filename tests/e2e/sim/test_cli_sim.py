"""`peerlab up --backend sim`: a simulated network behind the CLI, its virtual time following
the wall clock between commands, each command acting alone on it."""

import json
from pathlib import Path

from peerlab.testing import wait_until


def test_a_simulated_network_behind_the_cli(cli, tmp_path: Path) -> None:
    cli("up", "--backend", "sim", "--peers", "3")
    status = json.loads(cli("status", "--json").stdout)
    assert [n["name"] for n in status["nodes"]] == ["A", "B", "C"]
    assert all(n["state"] == "running" for n in status["nodes"])
    assert all(n.get("pid") is None for n in status["nodes"]), "a simulated node is no process"

    cli("friend", "add", "A", "B")
    note = tmp_path / "note.txt"
    note.write_text("a note from A for B, on virtual time\n")
    cli("file", "add", "A", str(note), "--for", "B")
    # Nobody waits in the simulation here: B gets the note only because virtual time runs
    # on between the commands.
    text = wait_until(
        lambda: cli("file", "cat", "B", "note.txt", check=False).stdout,
        30,
        what="B to be able to read note.txt",
    )
    assert text == "a note from A for B, on virtual time\n"

    assert "killed" in cli("peer", "kill", "A").stdout
    assert "running" in cli("peer", "restart", "A").stdout
    assert cli("file", "cat", "A", "note.txt").stdout == text  # synced before it was acked
    cli("down")
    assert cli("status", check=False).returncode == 2
