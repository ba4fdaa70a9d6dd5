"""`--peerlab-reruns`: deliberately flaky, seed-dependent and broken tests, run through
pytester, are told apart; every outcome lands in the trend store; `peerlab flaky` reads it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerlab.automation.reruns import Attempt, classify, next_seed

SUITE = """
import pathlib

def test_nondeterministic(peerlab_seed, tmp_path_factory):
    # Fails on its first run only, whatever the seed: nondeterminism outside the seed.
    marker = pathlib.Path(__file__).with_name("ran-once")
    first = not marker.exists()
    marker.touch()
    assert not first, "first run fails"

def test_seed_dependent(peerlab_seed):
    assert peerlab_seed != 4242, "this seed brings the bug out"

def test_broken(peerlab_seed):
    assert peerlab_seed < 0, "fails whatever the seed"

def test_fine(peerlab_seed):
    pass
"""


def outcomes(db: Path) -> dict[str, tuple[str, str | None, int | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT test, outcome, classification, seed FROM outcomes").fetchall()
    return {test.split("::")[-1]: (outcome, kind, seed) for test, outcome, kind, seed in rows}


def test_reruns_tell_flaky_seed_dependent_and_deterministic_apart(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    results = pytester.path / "results"
    run = pytester.runpytest(
        "--peerlab-reruns", "3", "--peerlab-seed", "4242", "--peerlab-results", str(results)
    )
    run.assert_outcomes(passed=2, failed=2)
    db = results / "trends.sqlite"
    assert outcomes(db) == {
        "test_nondeterministic": ("passed", "flaky", 4242),
        "test_seed_dependent": ("failed", "seed-dependent", 4242),
        "test_broken": ("failed", "deterministic", 4242),
        "test_fine": ("passed", None, 4242),
    }
    text = run.stdout.str()
    assert "FLAKY (seed 4242) test_suite.py::test_nondeterministic" in text
    assert "SEED-DEPENDENT (seed 4242) test_suite.py::test_seed_dependent" in text
    assert "fails with seed 4242, passes with others: replay that seed" in text
    assert "fails whatever the seed: a real failure" in text
    assert "suite flake rate 25.0%" in text
    index = (results / "index.html").read_text()
    assert 'id="flake-rate">25.0%' in index


def test_without_reruns_a_failure_stays_a_plain_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    results = pytester.path / "results"
    run = pytester.runpytest("--peerlab-seed", "4242", "--peerlab-results", str(results))
    run.assert_outcomes(passed=1, failed=3)
    kinds = {name: kind for name, (_, kind, _) in outcomes(results / "trends.sqlite").items()}
    assert set(kinds.values()) == {None}


def test_a_flaky_scenario_keeps_both_runs_artifacts_side_by_side(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_env="""
        import pathlib

        def test_env_flaky(peerlab_env):
            marker = pathlib.Path(__file__).with_name("ran-once")
            first = not marker.exists()
            marker.touch()
            assert not first
        """
    )
    results = pytester.path / "results"
    run = pytester.runpytest(
        "--peerlab-reruns", "2", "--peerlab-seed", "7", "--peerlab-results", str(results)
    )
    run.assert_outcomes(passed=1)
    first, again = (
        results / "test_env.py__test_env_flaky",
        results / "test_env.py__test_env_flaky~rerun2",
    )
    assert json.loads((first / "result.json").read_text())["outcome"] == "failed"
    assert json.loads((again / "result.json").read_text())["outcome"] == "passed"
    record = json.loads((first / "reruns.json").read_text())
    assert record["classification"] == "flaky"
    assert [(a["seed"], a["passed"]) for a in record["attempts"]] == [(7, False), (7, True)]
    assert [a["results"] for a in record["attempts"]] == [str(first), str(again)]


def test_classification_rules() -> None:
    failed, passed = Attempt(1, 5, False, None), Attempt(2, 5, True, None)
    assert classify([failed, passed]) == "flaky"
    same = Attempt(2, 5, False, None)
    assert classify([failed, same, Attempt(3, 9, False, None), Attempt(4, 8, True, None)]) == (
        "seed-dependent"
    )
    assert classify([failed, same, Attempt(3, 9, False, None)]) == "deterministic"
    assert classify([failed]) == "deterministic", "no rerun allowed: nothing to tell"
    assert next_seed([failed], 3) == 5, "the same seed first"
    new = next_seed([failed, same], 3)
    assert isinstance(new, int) and new != 5
    assert next_seed([failed, passed], 3) is False, "flaky is settled"
    assert next_seed([Attempt(1, None, False, None), Attempt(2, None, False, None)], 3) is False


def test_peerlab_flaky_lists_flake_rates_of_the_last_runs(
    pytester: pytest.Pytester, cli: Callable[..., Any]
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    results = pytester.path / "results"
    for _ in range(2):
        (pytester.path / "ran-once").unlink(missing_ok=True)
        pytester.runpytest(
            "--peerlab-reruns", "2", "--peerlab-seed", "4242", "--peerlab-results", str(results)
        )
    shown = cli("flaky", "--db", str(results / "trends.sqlite"), "--last", "2", "--json")
    data = json.loads(shown.stdout)
    rates = {row["test"].split("::")[-1]: row for row in data["tests"]}
    assert rates["test_nondeterministic"]["flaky"] == 2
    assert rates["test_nondeterministic"]["flake_rate"] == 1.0
    assert rates["test_broken"]["failed"] == 2 and rates["test_broken"]["flaky"] == 0
    assert data["suite"]["flake_rate"] == 0.25 and data["suite"]["suites"] == 2
    table = cli("flaky", "--db", str(results / "trends.sqlite"), "--last", "1").stdout
    assert "test_nondeterministic" in table and "100.0%" in table
    missing = cli("flaky", "--db", str(results / "none.sqlite"), check=False)
    assert missing.returncode == 2 and "--db" in missing.stderr
