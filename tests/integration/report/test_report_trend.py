"""Trends: figures kept per run in SQLite, a regression flagged past 20% of the median."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.trend import Figure, TrendStore, bench_figures, direction, figures_from


def _record(
    store: TrendStore, value: float, name: str = "spawn: seconds_to_ready", better: str = "lower"
) -> None:
    store.record([Figure(name, value, better, "test")], commit="c")  # type: ignore[arg-type]


def test_more_than_20_percent_worse_than_the_median_of_5_is_a_regression(tmp_path: Path) -> None:
    with TrendStore(tmp_path / "t.sqlite") as store:
        for value in (10.0, 11.0, 9.0, 50.0, 10.5, 10.0):  # the 50 is an outlier run
            _record(store, value)
        [steady] = store.compare()
        assert steady.median == 10.5 and not steady.regressed, "the last 5: 11, 9, 50, 10.5, 10"
        _record(store, 12.5)
        assert not store.compare()[0].regressed, "19% worse is within the limit"
        _record(store, 13.0)
        [slower] = store.compare()
        assert slower.median == 10.5 and slower.regressed
        assert slower.change == pytest.approx(2.5 / 10.5)
        _record(store, 12.0)
        assert not store.compare()[0].regressed, "12 is within 20% of the median of 50, 10.5 ..."
        assert [row["value"] for row in store.history("spawn: seconds_to_ready")][-3:] == [
            12.5,
            13.0,
            12.0,
        ]


def test_higher_is_better_for_speedups(tmp_path: Path) -> None:
    with TrendStore(tmp_path / "t.sqlite") as store:
        for value in (5.0, 5.0, 5.0, 3.9):
            _record(store, value, "spawn: speedup", "higher")
        [result] = store.compare()
        assert result.regressed and result.change == pytest.approx(0.22)


def test_too_little_history_is_a_baseline_not_a_verdict(tmp_path: Path) -> None:
    with TrendStore(tmp_path / "t.sqlite") as store:
        _record(store, 1.0)
        _record(store, 100.0)
        [result] = store.compare()
        assert result.median is None and not result.regressed
        assert store.compare(min_history=1)[0].regressed
    with TrendStore(tmp_path / "none.sqlite") as empty, pytest.raises(UsageError):
        empty.compare()


def test_bench_output_figures_and_directions() -> None:
    figures = bench_figures(
        {
            "peers": 50,
            "cpus": 2,
            "all_ready": True,
            "seconds_to_ready": 1.2,
            "pss_mb_per_peer": 7.5,
            "speedup": 3.1,
            "latency": {"p50_ms": 2.0},
        },
        "b.json",
        "spawn",
    )
    assert {f.name: f.better for f in figures} == {
        "spawn: seconds_to_ready": "lower",
        "spawn: pss_mb_per_peer": "lower",
        "spawn: speedup": "higher",
        "spawn: latency.p50_ms": "lower",
    }
    assert direction("ops_per_s") == "higher" and direction("p95_ms") == "lower"
    overridden = bench_figures({"score_ms": 1, "better": {"score_ms": "higher"}}, "b", "x")
    assert overridden[0].better == "higher"


def test_figures_from_results_folders(tmp_path: Path) -> None:
    run = tmp_path / "results" / "t1"
    run.mkdir(parents=True)
    (run / "result.json").write_text(
        json.dumps(
            {
                "test": "t1",
                "outcome": "passed",
                "seconds": 4.0,
                "verdicts": [
                    {"checker": "s/converges", "valid": "valid", "stats": {"seconds": 0.8}}
                ],
                "timings": {"operations": {"publish": {"latency_ms": {"p95": 3.5}}}},
            }
        )
    )
    failed = tmp_path / "results" / "t2"
    failed.mkdir()
    (failed / "result.json").write_text(
        json.dumps({"test": "t2", "outcome": "failed", "seconds": 99})
    )
    names = {f.name: f.value for f in figures_from([tmp_path / "results"])}
    assert names == {
        "t1: seconds": 4.0,
        "t1: s/converges seconds": 0.8,
        "t1: publish p95 ms": 3.5,
    }, "a failed run's time is not a figure"
    with pytest.raises(UsageError, match=r"no result\.json"):
        figures_from([tmp_path])


def test_the_trend_command_exits_1_on_a_regression(tmp_path: Path) -> None:
    db = tmp_path / "trends.sqlite"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}

    def trend(value: float) -> subprocess.CompletedProcess[str]:
        bench = tmp_path / "spawn.json"
        bench.write_text(json.dumps({"seconds_to_ready": value}))
        return subprocess.run(
            [sys.executable, "-m", "peerlab", "trend", str(bench), "--db", str(db)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    for value in (1.0, 1.1, 0.9, 1.0, 1.05):
        assert trend(value).returncode == 0
    regressed = trend(1.5)
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    assert "REGRESSION" in regressed.stdout and "+50.0% worse" in regressed.stdout
