"""`peerlab init-ci github` and `peerlab shell` (completion and the command loop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from peerlab.cli import app
from peerlab.cli.ci import workflow
from peerlab.cli.shell import NetworkFacts, PeerlabCompleter, run_shell


def test_init_ci_writes_once(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}

    def init(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "peerlab", "init-ci", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    assert init("github").returncode == 0
    written = tmp_path / ".github/workflows/peerlab.yml"
    assert written.read_text() == workflow()
    again = init("github")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert init("github", "--force", "--python", "3.12").returncode == 0
    assert 'python-version: "3.12"' in written.read_text()
    assert init("gitlab").returncode == 2
    bad = init("github", "--force", "--category", "unit")
    assert bad.returncode == 2 and "--category" in bad.stderr


class _Facts(NetworkFacts):
    def __init__(self) -> None:
        super().__init__(lambda: "default")

    def peers(self) -> list[str]:
        return ["A", "B", "C"]

    def files(self, peer: str) -> list[str]:
        return {"B": ["notes.txt", "photo.png"]}.get(peer, [])


@pytest.fixture
def completer() -> PeerlabCompleter:
    return PeerlabCompleter(typer.main.get_command(app), _Facts())


def _complete(completer: PeerlabCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_completion_of_commands_peers_files_and_options(
    completer: PeerlabCompleter, tmp_path: Path
) -> None:
    assert {"peer", "logs", "snapshot", "scenario", "exit", "use"} <= set(_complete(completer, ""))
    assert _complete(completer, "pe") == ["peer"]
    assert "kill" in _complete(completer, "peer ")
    assert _complete(completer, "peer kill ") == ["A", "B", "C"]
    assert _complete(completer, "friend add A ") == ["A", "B", "C"]
    assert _complete(completer, "logs --node ") == ["A", "B", "C"]
    assert _complete(completer, "logs --node A,") == ["B", "C"], "a list does not repeat names"
    assert _complete(completer, "file cat B ") == ["notes.txt", "photo.png"]
    assert _complete(completer, "file cat B no") == ["notes.txt"]
    assert _complete(completer, "scenario run sp") == ["split-brain"]
    assert "--follow" in _complete(completer, "logs --f")
    assert _complete(completer, "peer add ") == [], "a new peer's name is not a known peer"
    (tmp_path / "local-file.txt").write_text("x")
    assert _complete(completer, f"file add A {tmp_path}/loc") == ["al-file.txt"]


def test_the_shell_runs_commands_and_survives_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PEERLAB_HOME", str(tmp_path / "home"))
    with create_pipe_input() as keys:
        keys.send_text("scenario list\nstatus\nuse other\nnosuch\nhelp snapshot\nexit\n")
        run_shell("default", input=keys, output=DummyOutput())
    out, err = capsys.readouterr()
    assert "crash-during-sync" in out
    assert "environment 'default' is not running" in err
    assert "acting on environment other" in out
    assert "No such command 'nosuch'" in out + err
    assert "Freeze every peer" in out, "help shows a command's help"
