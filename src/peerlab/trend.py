"""Trends: each run's figures kept in a local SQLite file, and regressions flagged.

A run's figures come from benchmark outputs (`peerlab bench ... --json` saved to a file)
and from results folders (how long each scenario took, operation latency percentiles).
Every figure declares which way is better: a benchmark's JSON names its figures in
`"better": {"seconds_to_ready": "lower", "speedup": "higher"}` (other numbers in it, such
as the number of peers, are the setup, not figures), and a results folder's figures are
times. Nothing is guessed from a name.

Each figure is judged at two levels, warn and alert, each by two rules (`Thresholds`):
against absolute limits (the plan's table: handshake warn above 500 ms, alert above 1 s)
and against the median of its last `window` (5) runs (warn 10%, alert 20% worse). An
alert fails `peerlab trend`; a warning is shown.

    runs(id, recorded, label, commit)
    figures(run, name, value, better, source)
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from peerlab.errors import UsageError

Better = Literal["lower", "higher"]
Level = Literal["ok", "warn", "alert"]
DEFAULT_DB = Path("peerlab-results") / "trends.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recorded REAL NOT NULL,
  label TEXT,
  commit_id TEXT
);
CREATE TABLE IF NOT EXISTS figures (
  run INTEGER NOT NULL REFERENCES runs(id),
  name TEXT NOT NULL,
  value REAL NOT NULL,
  better TEXT NOT NULL CHECK (better IN ('lower', 'higher')),
  source TEXT,
  PRIMARY KEY (run, name)
);
"""


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    better: Better
    source: str


@dataclass(frozen=True)
class Limits:
    """One figure's levels: absolute (`warn`, `alert`, in the figure's unit; past them in
    the worse direction) and relative to the median of its last runs (fractions)."""

    warn: float | None = None
    alert: float | None = None
    warn_change: float = 0.10
    alert_change: float = 0.20


@dataclass(frozen=True)
class Thresholds:
    """Limits per figure name (shell patterns, the first that matches wins), else `default`."""

    figures: tuple[tuple[str, Limits], ...] = ()
    default: Limits = Limits()

    def of(self, name: str) -> Limits:
        return next(
            (lim for pattern, lim in self.figures if fnmatch.fnmatchcase(name, pattern)),
            self.default,
        )


@dataclass(frozen=True)
class Comparison:
    name: str
    value: float
    better: Better
    median: float | None
    history: int  # how many earlier runs the median is of
    change: float | None  # relative change against the median, + is worse
    level: Level = "ok"
    reasons: tuple[str, ...] = ()  # why it is at that level
    limits: Limits = Limits()

    @property
    def regressed(self) -> bool:
        return self.level == "alert"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "better": self.better,
            "median": self.median,
            "history": self.history,
            "change": self.change,
            "level": self.level,
            "reasons": list(self.reasons),
            "warn": self.limits.warn,
            "alert": self.limits.alert,
            "regressed": self.regressed,
        }


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), item)


def bench_figures(data: dict[str, Any], source: str, label: str) -> list[Figure]:
    """The figures a benchmark's JSON output declares in `better`; other numbers are setup."""
    declared = data.get("better")
    if not isinstance(declared, dict) or not declared:
        raise UsageError(
            f"{source} declares no figures",
            field="better",
            hint='a benchmark names its figures: "better": {"seconds_to_ready": "lower"}',
        )
    values = dict(_flatten("", {k: v for k, v in data.items() if k != "better"}))
    figures = []
    for key, better in declared.items():
        if better not in ("lower", "higher"):
            raise UsageError(
                f"{source}: better[{key!r}] is {better!r}",
                field="better",
                hint='"lower" or "higher"',
            )
        if key in values:  # a figure a run could not measure (null) is left out
            figures.append(Figure(f"{label}: {key}", values[key], better, source))
    return figures


def result_figures(result: dict[str, Any], source: str) -> list[Figure]:
    """A run's duration, scenario checks' timings and operation latency percentiles."""
    test = str(result.get("test") or result.get("run") or "run")
    figures = []
    if result.get("outcome") == "passed" and isinstance(result.get("seconds"), int | float):
        figures.append(Figure(f"{test}: seconds", float(result["seconds"]), "lower", source))
    for verdict in result.get("verdicts") or []:
        seconds = (verdict.get("stats") or {}).get("seconds")
        if verdict.get("valid") == "valid" and isinstance(seconds, int | float):
            figures.append(
                Figure(f"{test}: {verdict.get('checker')} seconds", float(seconds), "lower", source)
            )
    for name, stats in ((result.get("timings") or {}).get("operations") or {}).items():
        latency = stats.get("latency_ms") or {}
        if isinstance(latency.get("p95"), int | float):
            figures.append(Figure(f"{test}: {name} p95 ms", float(latency["p95"]), "lower", source))
    return figures


def figures_from(paths: Iterable[Path]) -> list[Figure]:
    """Figures from benchmark JSON files, result.json files and results folders."""
    found: dict[str, Figure] = {}
    for path in paths:
        files = [path]
        if path.is_dir():
            files = sorted(path.glob("*/result.json"))
            if (path / "result.json").exists():
                files.append(path / "result.json")
            if not files:
                raise UsageError(
                    f"{path} holds no result.json",
                    field="PATHS",
                    hint="name results folders or benchmark JSON files",
                )
        for file in files:
            try:
                data = json.loads(file.read_text())
            except FileNotFoundError:
                raise UsageError(f"{file} does not exist", field="PATHS") from None
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"{file} is not JSON: {exc}",
                    field="PATHS",
                    hint="save a benchmark's output with --json > file.json",
                ) from None
            if not isinstance(data, dict):
                raise UsageError(f"{file} is not a JSON object", field="PATHS")
            if file.name == "result.json":
                items = result_figures(data, str(file))
            else:
                items = bench_figures(data, str(file), file.stem)
            for figure in items:
                found[figure.name] = figure
    return list(found.values())


class TrendStore:
    """The SQLite file of runs and their figures."""

    def __init__(self, path: Path = DEFAULT_DB) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrendStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self, figures: list[Figure], label: str | None = None, commit: str | None = None
    ) -> int:
        if not figures:
            raise UsageError(
                "there are no figures to record",
                field="PATHS",
                hint="benchmark JSON needs numbers named like seconds_to_ready; "
                "results folders need passed runs",
            )
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (recorded, label, commit_id) VALUES (?, ?, ?)",
                (time.time(), label, commit if commit is not None else current_commit()),
            )
            run = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO figures (run, name, value, better, source) VALUES (?, ?, ?, ?, ?)",
                [(run, f.name, f.value, f.better, f.source) for f in figures],
            )
        return run

    def latest_run(self) -> int | None:
        row = self._db.execute("SELECT max(id) FROM runs").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def compare(
        self,
        run: int | None = None,
        *,
        window: int = 5,
        thresholds: Thresholds = Thresholds(),
        min_history: int = 3,
    ) -> list[Comparison]:
        """Each figure of `run` (default: the latest) against its limits and its last
        `window` runs."""
        run = run if run is not None else self.latest_run()
        if run is None:
            raise UsageError(
                "no run has been recorded yet",
                field="PATHS",
                hint="`peerlab trend FILE_OR_FOLDER ...` records one",
            )
        comparisons = []
        rows = self._db.execute(
            "SELECT name, value, better FROM figures WHERE run = ? ORDER BY name", (run,)
        ).fetchall()
        for name, value, better in rows:
            previous = [
                v
                for (v,) in self._db.execute(
                    "SELECT value FROM figures WHERE name = ? AND run < ? ORDER BY run DESC "
                    "LIMIT ?",
                    (name, run, window),
                )
            ]
            limits = thresholds.of(name)
            comparisons.append(_compare(name, float(value), better, previous, limits, min_history))
        return comparisons

    def history(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT runs.id, runs.recorded, runs.label, runs.commit_id, figures.value "
            "FROM figures JOIN runs ON runs.id = figures.run WHERE figures.name = ? "
            "ORDER BY runs.id DESC LIMIT ?",
            (name, limit),
        ).fetchall()
        return [
            {"run": r[0], "recorded": r[1], "label": r[2], "commit": r[3], "value": r[4]}
            for r in reversed(rows)
        ]


def _compare(
    name: str,
    value: float,
    better: Better,
    previous: list[float],
    limits: Limits,
    min_history: int,
) -> Comparison:
    levels: list[tuple[Level, str]] = []
    absolute: tuple[tuple[Level, float | None], ...] = (
        ("alert", limits.alert),
        ("warn", limits.warn),
    )
    for name_of, limit in absolute:
        if limit is not None and (value > limit if better == "lower" else value < limit):
            side = "above" if better == "lower" else "below"
            levels.append((name_of, f"{value:g} is {side} the {name_of} level {limit:g}"))
            break
    median, worse = None, None
    if len(previous) >= max(min_history, 1):
        median = statistics.median(previous)
        if median != 0:
            change = (value - median) / abs(median)
            worse = change if better == "lower" else -change
            relative: tuple[tuple[Level, float], ...] = (
                ("alert", limits.alert_change),
                ("warn", limits.warn_change),
            )
            for name_of, limit in relative:
                if worse > limit:
                    levels.append((name_of, f"{worse:+.1%} against the median, past {limit:.0%}"))
                    break
    level: Level = "ok"
    if levels:
        level = "alert" if any(lv == "alert" for lv, _ in levels) else "warn"
    reasons = tuple(reason for _, reason in levels)
    return Comparison(name, value, better, median, len(previous), worse, level, reasons, limits)


def load_thresholds(path: Path, *, warn_change: float, alert_change: float) -> Thresholds:
    """`[tool.peerlab.trend.figures."PATTERN"]` tables of `path` (pyproject.toml), each
    with `warn`/`alert` levels and/or `warn_change`/`alert_change` percentages; the
    percentages given are the defaults of every other figure."""
    import tomllib

    default = Limits(warn_change=warn_change, alert_change=alert_change)
    if not path.exists():
        return Thresholds(default=default)
    tables = tomllib.loads(path.read_text()).get("tool", {}).get("peerlab", {}).get("trend", {})
    figures = []
    for pattern, raw in (tables.get("figures") or {}).items():
        unknown = set(raw) - {"warn", "alert", "warn_change", "alert_change"}
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values())
        if unknown or not numbers:
            raise UsageError(
                f"{path}: [tool.peerlab.trend.figures.{pattern!r}] has "
                + (
                    f"unknown keys {sorted(unknown)}" if unknown else "a value that is not a number"
                ),
                field=f"tool.peerlab.trend.figures.{pattern}",
                hint="warn = 500, alert = 1000 (the figure's unit); warn_change/alert_change in %",
            )
        figures.append(
            (
                pattern,
                Limits(
                    raw.get("warn"),
                    raw.get("alert"),
                    raw.get("warn_change", warn_change * 100) / 100,
                    raw.get("alert_change", alert_change * 100) / 100,
                ),
            )
        )
    return Thresholds(tuple(figures), default)


def current_commit() -> str | None:
    """The commit being tested: CI's variable, else git's HEAD, else unknown."""
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT"):
        if os.environ.get(variable):
            return os.environ[variable]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if done.returncode == 0:
            return done.stdout.strip() or None
    return None
