"""The suite's report: `peerlab-results/index.html`, written when a test session ends.

This run's outcome of every test (with what reruns found and the known issue that excused
it), the suite's flake rate over its last runs, the flakiest tests, known issues that look
fixed, and links to each test's own results folder. One self-contained file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2

from peerlab.automation.outcomes import SEVERITY, FlakeRate, Outcome

INDEX = "index.html"

TEMPLATE = Path(__file__).with_name("suite.html.j2")


def write_suite_report(
    results: Path,
    outcomes: list[Outcome],
    suite: dict[str, Any],
    rates: list[FlakeRate],
    fixed: list[tuple[str, int]],
) -> Path:
    from peerlab.pytest_plugin import test_dir_name

    results.mkdir(parents=True, exist_ok=True)
    rows = []
    for outcome in sorted(outcomes, key=lambda o: (-SEVERITY.get(o.outcome, 0), o.test)):
        folder = test_dir_name(outcome.test)
        rows.append({**outcome.__dict__, "folder": folder if (results / folder).is_dir() else None})
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome.outcome] = tally.get(outcome.outcome, 0) + 1
    html = (
        jinja2.Environment(autoescape=True)
        .from_string(TEMPLATE.read_text(encoding="utf-8"))
        .render(
            when=time.strftime("%Y-%m-%d %H:%M:%S"),
            counts=", ".join(f"{n} {what}" for what, n in sorted(tally.items())),
            suite=suite,
            outcomes=rows,
            rates=[r for r in rates if r.flaky or r.failed][:50],
            fixed=fixed,
        )
    )
    path = results / INDEX
    path.write_text(html, encoding="utf-8")
    return path
