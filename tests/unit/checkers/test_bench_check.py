"""The checker benchmark: its generated history, the injected stale read, and its CLI."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from peerlab.bench.check import overlap, register, register_history, run


def test_generated_history_is_seeded_and_overlapping() -> None:
    first = register_history(400, 5, 3)
    assert [e.to_json() for e in first] == [e.to_json() for e in register_history(400, 5, 3)]
    assert [e.to_json() for e in first] != [e.to_json() for e in register_history(400, 5, 4)]
    mean, most = overlap(first)
    assert mean > 2 and most == 4  # five clients, nearly always busy


def test_run_reports_both_verdicts() -> None:
    result = run(ops=600, processes=4, seed=1)
    assert result["valid_verdict"] == "valid"
    assert result["invalid_found"] is True
    assert result["reported_blocked_index"] == result["injected_stale_read_index"]
    assert result["keys"] == 1 and result["ops"] == 600


def test_bench_command_prints_json() -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Bench."""

    register(app)
    result = CliRunner().invoke(app, ["check", "--ops", "300", "--keys", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["keys"] == 3 and data["invalid_found"] is True
