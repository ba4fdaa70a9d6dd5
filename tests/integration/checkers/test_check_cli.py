"""`peerlab check linearizable` and `peerlab history export`: exit codes, output, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from peerlab.bench.check import inject_stale_read, register_history
from peerlab.cli.check import register
from peerlab.errors import UsageError
from peerlab.history import History
from peerlab.history_edn import export_edn

STALE_READ_EDN = """
{:type :invoke, :f :write, :value 1, :process 0}
{:type :ok, :f :write, :value 1, :process 0}
{:type :invoke, :f :write, :value 2, :process 0}
{:type :ok, :f :write, :value 2, :process 0}
{:type :invoke, :f :read, :value nil, :process 1}
{:type :ok, :f :read, :value 1, :process 1}
"""


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def run(app: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write_jsonl(path: Path, stale: bool = False) -> Path:
    history = History(path)
    history.complete(history.invoke("write", 1, process=0), "ok")
    history.complete(history.invoke("write", 2, process=0), "ok")
    history.complete(history.invoke("read", process=1), "ok", 1 if stale else 2)
    history.close()
    return path


def test_valid_history_exits_0(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, "check", "linearizable", str(write_jsonl(tmp_path / "h.jsonl")))
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output


def test_invalid_history_exits_1_and_shows_the_evidence(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "h.edn"
    path.write_text(STALE_READ_EDN)
    result = run(app, "check", "linearizable", str(path), "--model", "cas-register")
    assert result.exit_code == 1, result.output
    assert "INVALID" in result.output
    assert "read → 1" in result.output
    assert "could not linearize" in result.output


def test_json_output(app: typer.Typer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "h.jsonl", stale=True)
    result = run(app, "check", "linearizable", str(path), "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.output)
    assert verdict["valid"] == "invalid"
    assert verdict["evidence"]["blocked"]["result"] == 1


def test_time_limit_exits_3(app: typer.Typer, tmp_path: Path) -> None:
    entries = register_history(2000, 20, 7)
    inject_stale_read(entries)
    path = tmp_path / "hard.edn"
    path.write_text(export_edn(entries))
    result = run(app, "check", "linearizable", str(path), "--time-limit", "0.05")
    assert result.exit_code == 3, result.output
    assert "UNKNOWN" in result.output


def test_initial_value(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = History(path)
    history.complete(history.invoke("read", process=0), "ok", 0)
    history.close()
    assert run(app, "check", "linearizable", str(path)).exit_code == 1
    assert run(app, "check", "linearizable", str(path), "--initial", "0").exit_code == 0


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["--model", "queue"], "--model", ["'queue'", "register, cas-register, set"]),
        (["--initial", "{oops"], "--initial", ["not JSON"]),
    ],
)
def test_bad_options_are_usage_errors(
    app: typer.Typer, tmp_path: Path, args: list[str], field: str, words: list[str]
) -> None:
    path = write_jsonl(tmp_path / "h.jsonl")
    result = run(app, "check", "linearizable", str(path), *args)
    assert isinstance(result.exception, UsageError)
    assert result.exception.field == field
    text = str(result.exception)
    assert all(word in text for word in words), text


def test_missing_or_unreadable_history_is_a_usage_error(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, "check", "linearizable", str(tmp_path / "nope.jsonl"))
    assert isinstance(result.exception, UsageError)
    assert "nope.jsonl" in str(result.exception) and ".edn" in str(result.exception)
    garbage = tmp_path / "garbage.edn"
    garbage.write_text("{:type :invoke")
    result = run(app, "check", "linearizable", str(garbage))
    assert isinstance(result.exception, UsageError)
    assert "missing '}'" in str(result.exception)


def test_operation_the_model_lacks_is_a_usage_error(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "h.edn"
    path.write_text("{:type :invoke :f :cas :value [1 2] :process 0}")
    result = run(app, "check", "linearizable", str(path))
    assert isinstance(result.exception, UsageError)
    assert "cas-register" in str(result.exception)


def test_main_entry_point_exits_2_on_usage_errors(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import peerlab.cli

    monkeypatch.setattr(peerlab.cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["peerlab", "check", "linearizable", str(tmp_path / "x.edn")])
    with pytest.raises(SystemExit) as exit_info:
        peerlab.cli.main()
    assert exit_info.value.code == 2
    assert "x.edn" in capsys.readouterr().err


def test_export_edn_to_stdout_and_file(app: typer.Typer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "h.jsonl")
    result = run(app, "history", "export", str(path), "--edn")
    assert result.exit_code == 0
    assert result.output.count("\n") == 6
    assert ":type :invoke" in result.output
    out = tmp_path / "h.edn"
    assert run(app, "history", "export", str(path), "--edn", "-o", str(out)).exit_code == 0
    assert out.read_text() == result.output
    assert run(app, "check", "linearizable", str(out)).exit_code == 0


def test_export_needs_a_format(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, "history", "export", str(write_jsonl(tmp_path / "h.jsonl")))
    assert isinstance(result.exception, UsageError)
    assert result.exception.field == "--edn"
