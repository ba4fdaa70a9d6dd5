"""Trends: each run's figures kept in a local SQLite file, and regressions flagged.

A run's figures come from benchmark outputs (`peerlab bench ... --json` saved to a file)
and from results folders (how long each scenario took, operation latency percentiles).
A figure regresses when it is more than `threshold` (20%) worse than the median of the
same figure in its last `window` (5) runs; "worse" is higher for times and sizes, lower for
speedups and throughputs.

    runs(id, recorded, label, commit)
    figures(run, name, value, better, source)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
# A number in a benchmark's output is a figure when its name says what it measures; counts
# that describe the setup (peers, cpus) are not figures and must not be flagged.
_MEASURE = re.compile(
    r"seconds|(^|_)s$|(^|_)ms($|_)|(^|_)mb($|_)|bytes|latency|speedup|"
    r"throughput|per_s|ops|rate|rss|pss|duration|time"
)
_HIGHER = re.compile(r"speedup|throughput|per_s|ops_s|rate|bandwidth")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    better: Better
    source: str


@dataclass(frozen=True)
class Comparison:
    name: str
    value: float
    better: Better
    median: float | None
    history: int  # how many earlier runs the median is of
    change: float | None  # relative change against the median, + is worse
    regressed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "better": self.better,
            "median": self.median,
            "history": self.history,
            "change": self.change,
            "regressed": self.regressed,
        }


def direction(name: str) -> Better:
    return "higher" if _HIGHER.search(name.lower()) else "lower"


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), item)


def bench_figures(data: dict[str, Any], source: str, label: str) -> list[Figure]:
    """The figures in a benchmark's JSON output; `better` in it overrides the direction."""
    raw = data.get("better")
    overrides: dict[str, Any] = raw if isinstance(raw, dict) else {}
    figures = []
    for key, value in _flatten("", {k: v for k, v in data.items() if k != "better"}):
        leaf = key.rsplit(".", 1)[-1].lower()
        if not _MEASURE.search(leaf):
            continue
        better = overrides.get(key) or direction(leaf)
        if better not in ("lower", "higher"):
            raise UsageError(
                f"{source}: better[{key!r}] is {better!r}",
                field="better",
                hint='"lower" or "higher"',
            )
        figures.append(Figure(f"{label}: {key}", value, better, source))
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
        threshold: float = 0.20,
        min_history: int = 3,
    ) -> list[Comparison]:
        """Each figure of `run` (default: the latest) against its last `window` runs."""
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
            comparisons.append(
                _compare(name, float(value), better, previous, threshold, min_history)
            )
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
    threshold: float,
    min_history: int,
) -> Comparison:
    if len(previous) < max(min_history, 1):
        return Comparison(name, value, better, None, len(previous), None, False)
    median = statistics.median(previous)
    if median == 0:
        return Comparison(name, value, better, median, len(previous), None, False)
    change = (value - median) / abs(median)
    worse = change if better == "lower" else -change
    return Comparison(name, value, better, median, len(previous), worse, worse > threshold)


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
