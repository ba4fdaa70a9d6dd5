"""Trends: figures kept per run in SQLite, each declaring which way is better; warn and alert
levels, absolute (the plan's table) and against the median of the last runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.trend import (
    Figure,
    Limits,
    Thresholds,
    TrendStore,
    bench_figures,
    figures_from,
    load_thresholds,
)


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


def test_a_benchmark_declares_its_figures_and_nothing_is_guessed() -> None:
    figures = bench_figures(
        {
            "peers": 50,
            "all_ready": True,
            "seconds_to_ready": 1.2,
            "speedup": 3.1,
            "rate_of_nothing": 7,
            "latency": {"p50_ms": 2.0},
            "pss_mb_per_peer": None,
            "better": {
                "seconds_to_ready": "lower",
                "speedup": "higher",
                "latency.p50_ms": "lower",
                "pss_mb_per_peer": "lower",
            },
        },
        "b.json",
        "spawn",
    )
    assert {f.name: f.better for f in figures} == {
        "spawn: seconds_to_ready": "lower",
        "spawn: speedup": "higher",
        "spawn: latency.p50_ms": "lower",
    }, "undeclared numbers are the setup; a figure not measured (null) is left out"
    with pytest.raises(UsageError, match="declares no figures"):
        bench_figures({"seconds_to_ready": 1.0}, "b.json", "spawn")
    with pytest.raises(UsageError, match=r"better\['x'\] is 'up'"):
        bench_figures({"x": 1, "better": {"x": "up"}}, "b.json", "spawn")


def test_every_benchmark_declares_which_way_each_figure_is_better() -> None:
    from peerlab.bench import check

    declared = check.run(ops=200, processes=3, seed=1)["better"]
    assert declared == {"valid_seconds": "lower", "invalid_seconds": "lower"}
    for module in ("spawn", "failover", "dht", "proxy", "sync"):
        text = (Path(check.__file__).parent / f"{module}.py").read_text()
        assert '"better"' in text, f"bench {module} declares its figures"


def test_warn_and_alert_levels_absolute_and_against_the_median(tmp_path: Path) -> None:
    limits = Thresholds(
        (("sync: handshake_ms", Limits(warn=500, alert=1000)),),
        Limits(warn_change=0.10, alert_change=0.20),
    )
    with TrendStore(tmp_path / "t.sqlite") as store:
        for value, level in ((400, "ok"), (600, "warn"), (1200, "alert")):
            _record(store, value, "sync: handshake_ms")
            [result] = store.compare(thresholds=limits, min_history=99)
            assert result.level == level, (value, result.reasons)
        assert "1200 is above the alert level 1000" in result.reasons[0]
        for value in (100.0, 100.0, 100.0):
            _record(store, value, "sync: throughput_msgs_per_s", "higher")
        _record(store, 88.0, "sync: throughput_msgs_per_s", "higher")
        [slower] = [c for c in store.compare(thresholds=limits) if "throughput" in c.name]
        assert slower.level == "warn" and "+12.0% against the median" in slower.reasons[0]


def test_thresholds_come_from_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.peerlab.trend.figures."sync: *_ms"]\nwarn = 100\nalert = 200\nalert_change = 50\n'
    )
    loaded = load_thresholds(path, warn_change=0.1, alert_change=0.2)
    assert loaded.of("sync: handshake_ms") == Limits(100, 200, 0.1, 0.5)
    assert loaded.of("spawn: speedup") == Limits(None, None, 0.1, 0.2)
    path.write_text('[tool.peerlab.trend.figures."x"]\nwran = 1\n')
    with pytest.raises(UsageError, match="unknown keys"):
        load_thresholds(path, warn_change=0.1, alert_change=0.2)
    project = Path(__file__).parents[3] / "pyproject.toml"
    plan = load_thresholds(project, warn_change=0.1, alert_change=0.2)
    assert plan.of("sync: handshake_ms") == Limits(500, 1000, 0.1, 0.2), "the plan's table"
    assert plan.of("sync: throughput_msgs_per_s").alert == 50


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


def test_the_trend_command_exits_1_on_an_alert(tmp_path: Path) -> None:
    db = tmp_path / "trends.sqlite"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}

    def trend(value: float) -> subprocess.CompletedProcess[str]:
        bench = tmp_path / "spawn.json"
        bench.write_text(
            json.dumps({"seconds_to_ready": value, "better": {"seconds_to_ready": "lower"}})
        )
        return subprocess.run(
            [sys.executable, "-m", "peerlab", "trend", str(bench), "--db", str(db)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    for value in (1.0, 1.1, 0.9, 1.0, 1.05):
        assert trend(value).returncode == 0
    warned = trend(1.15)
    assert warned.returncode == 0 and "WARN" in warned.stdout, warned.stdout
    regressed = trend(1.5)
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    assert "ALERT" in regressed.stdout and "+42.9% worse" in regressed.stdout
