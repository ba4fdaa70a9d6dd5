"""What a newcomer ran into: markup in their input, absurd node counts, env folders piling up,
and "not found" answers, each with a plain message and the right exit code."""

from __future__ import annotations

import json
from pathlib import Path

SLEEPER = """
[system]
name = "sleeper"
[launch]
command = ["sleep", "3600"]
[readiness]
type = "none"
"""


def test_user_input_is_never_markup(cli) -> None:
    result = cli("up", "--system", "[/oops]", check=False)
    assert result.returncode == 2, result.stderr
    assert "[/oops]" in result.stderr and "Traceback" not in result.stderr
    bracketed = cli("up", "--system", "./[bold]x[/bold].toml", check=False)
    assert "[bold]x[/bold].toml" in bracketed.stderr


def test_too_many_peers_are_refused_before_anything_is_made(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "sleeper.toml"
    manifest.write_text(SLEEPER)
    result = cli("up", "--system", str(manifest), "--peers", "100000", check=False)
    assert result.returncode == 2, result.stderr
    assert "do not fit" in result.stderr and "fix:" in result.stderr
    nodes = tmp_path / "home/envs/default/work/nodes"
    assert not nodes.exists() or list(nodes.iterdir()) == []


def test_env_list_and_prune(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "sleeper.toml"
    manifest.write_text(SLEEPER)
    for env in ("old", "live"):
        cli("--env", env, "up", "--system", str(manifest), "--peers", "1")
    cli("--env", "old", "down", "--no-results")
    listed = {e["name"]: e for e in json.loads(cli("env", "list", "--json").stdout)}
    assert listed["old"]["state"] == "down" and listed["live"]["state"] == "running"
    assert "would remove old" in cli("env", "prune", "--dry-run").stdout
    assert (tmp_path / "home/envs/old").is_dir()
    assert "removed old" in cli("env", "prune").stdout
    assert not (tmp_path / "home/envs/old").exists()
    assert (tmp_path / "home/envs/live/state.json").exists()
    assert [e["name"] for e in json.loads(cli("env", "list", "--json").stdout)] == ["live"]


def test_down_says_where_results_went(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "sleeper.toml"
    manifest.write_text(SLEEPER)
    cli("up", "--system", str(manifest), "--peers", "1")
    out = cli("down").stdout
    saved = next((tmp_path / "home/results").iterdir())
    assert str(saved) in out and (saved / "result.json").exists()
    assert not (tmp_path / "peerlab-results").exists()  # nothing in the current directory
    assert cli("report", str(saved), check=False).returncode == 0


def test_report_of_a_failed_run_exits_1(cli, tmp_path: Path) -> None:
    for outcome, code in (("failed", 1), ("passed", 0)):
        run = tmp_path / outcome
        run.mkdir()
        result = {"outcome": outcome, "test": "t", "seed": 1, "seconds": 1.0, "verdicts": []}
        (run / "result.json").write_text(json.dumps(result))
        answer = cli("report", str(run), check=False)
        assert answer.returncode == code, answer.stdout + answer.stderr
        assert outcome.upper() in answer.stdout
