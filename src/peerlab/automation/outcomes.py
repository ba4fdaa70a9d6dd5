"""Every test's outcome in every suite run, kept in the trend store's SQLite file, and the
flake rates read back from it (`peerlab flaky`, the suite report, "looks fixed").

    suites(id, recorded, commit_id, label)
    outcomes(suite, test, outcome, classification, seed, known_issue, seconds)

`outcome` is passed, failed, skipped or xfailed (a known issue); `classification` is what
reruns found for a test that failed first (`peerlab.automation.reruns`): flaky,
seed-dependent or deterministic, or null when it passed first or was not rerun.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerlab.trend import current_commit

SCHEMA = """
CREATE TABLE IF NOT EXISTS suites (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recorded REAL NOT NULL,
  commit_id TEXT,
  label TEXT
);
CREATE TABLE IF NOT EXISTS outcomes (
  suite INTEGER NOT NULL REFERENCES suites(id),
  test TEXT NOT NULL,
  outcome TEXT NOT NULL,
  classification TEXT,
  seed INTEGER,
  known_issue TEXT,
  seconds REAL,
  PRIMARY KEY (suite, test)
);
"""

SEVERITY = {"passed": 0, "skipped": 1, "xfailed": 2, "failed": 3}  # the worst phase wins


@dataclass(frozen=True)
class Outcome:
    """One test in one suite run."""

    test: str
    outcome: str
    classification: str | None = None
    seed: int | None = None
    known_issue: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class FlakeRate:
    """One test over its last runs: how often a first failure went away on a rerun."""

    test: str
    runs: int
    failed: int  # real failures: the reruns failed too (or there were none)
    flaky: int
    last: str  # the latest outcome, with its classification

    @property
    def rate(self) -> float:
        return self.flaky / self.runs if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "runs": self.runs,
            "failed": self.failed,
            "flaky": self.flaky,
            "flake_rate": round(self.rate, 4),
            "last": self.last,
        }


class OutcomeStore:
    """The outcome tables of one SQLite file (the trend store's, by default)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> OutcomeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, outcomes: Iterable[Outcome], label: str | None = None) -> int:
        """One suite run; returns its id."""
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO suites (recorded, commit_id, label) VALUES (?, ?, ?)",
                (time.time(), current_commit(), label),
            )
            suite = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (suite, o.test, o.outcome, o.classification, o.seed, o.known_issue, o.seconds)
                    for o in outcomes
                ],
            )
        return suite

    def _recent(self, last: int) -> list[tuple[str, str, str | None]]:
        """(test, outcome, classification) of the last `last` suite runs, oldest first."""
        return self._db.execute(
            "SELECT test, outcome, classification FROM outcomes WHERE suite IN "
            "(SELECT id FROM suites ORDER BY id DESC LIMIT ?) ORDER BY suite, test",
            (last,),
        ).fetchall()

    def flake_rates(self, last: int = 20) -> list[FlakeRate]:
        """Per test over the last `last` suite runs, the flakiest first."""
        tally: dict[str, list[Any]] = {}
        for test, outcome, classification in self._recent(last):
            row = tally.setdefault(test, [0, 0, 0, ""])
            row[0] += 1
            row[1] += outcome == "failed"
            row[2] += classification == "flaky"
            row[3] = outcome + (f" ({classification})" if classification else "")
        rates = [FlakeRate(test, *row) for test, row in tally.items()]
        return sorted(rates, key=lambda r: (-r.rate, -r.failed, r.test))

    def suite_flake_rate(self, last: int = 20) -> dict[str, Any]:
        """Over the last `last` suite runs: test runs, how many were flaky, how many failed,
        and the share of first failures that were flaky (the false alarms a rerun-less CI
        would have raised)."""
        rows = self._recent(last)
        suites = self._db.execute(
            "SELECT count(*) FROM (SELECT id FROM suites ORDER BY id DESC LIMIT ?)", (last,)
        ).fetchone()[0]
        flaky = sum(1 for _, _, c in rows if c == "flaky")
        failed = sum(1 for _, o, _ in rows if o == "failed")
        first_failures = flaky + failed
        return {
            "suites": int(suites),
            "test_runs": len(rows),
            "flaky": flaky,
            "failed": failed,
            "flake_rate": round(flaky / len(rows), 4) if rows else 0.0,
            "false_alarm_share": round(flaky / first_failures, 4) if first_failures else 0.0,
        }

    def passes_in_a_row(self, test: str) -> int:
        """How many of `test`'s latest runs passed, counting back from the newest."""
        count = 0
        for (outcome,) in self._db.execute(
            "SELECT outcome FROM outcomes WHERE test = ? ORDER BY suite DESC", (test,)
        ):
            if outcome != "passed":
                break
            count += 1
        return count

    def tests_of_issue(self, link: str) -> list[str]:
        """Tests a known issue has ever excused."""
        rows = self._db.execute(
            "SELECT DISTINCT test FROM outcomes WHERE known_issue = ? ORDER BY test", (link,)
        )
        return [test for (test,) in rows]
