"""The pytest side of test automation (loaded by `peerlab.pytest_plugin`).

  --peerlab-reruns N         rerun a failed test: same seed first, then new seeds (reruns.py)
  --peerlab-known-issues F   failures listed in F are xfail with their link (known_issues.py)
  --peerlab-trends PATH      where every test's outcome is recorded (outcomes.py); by
                             default the trend store in the results folder
  --peerlab-impacted REV     run only the tests the change since REV can affect (impact.py)

On a coverage run, each test's lines are recorded under its test id (a coverage context),
which is what `peerlab impact-map` turns into the map change-impact selection reads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from peerlab.automation import known_issues, reruns
from peerlab.automation.outcomes import SEVERITY, Outcome, OutcomeStore
from peerlab.errors import PeerlabError

PROPERTY = "peerlab"  # the user property that carries a test's rerun and known-issue facts


@dataclass
class _State:
    reruns: int
    known: known_issues.KnownIssues
    trends: Path | None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    looks_fixed: list[tuple[known_issues.KnownIssue, int]] = field(default_factory=list)
    suite: dict[str, Any] | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peerlab")
    group.addoption(
        "--peerlab-reruns",
        type=int,
        default=0,
        metavar="N",
        help="Rerun a failed test up to N times: the same seed, then new seeds; tells "
        "flaky, seed-dependent and deterministic failures apart.",
    )
    group.addoption(
        "--peerlab-known-issues",
        default=None,
        metavar="PATH",
        help=f"Known failures reported as xfail (default: {known_issues.FILE} in the rootdir).",
    )
    group.addoption(
        "--peerlab-trends",
        default=None,
        metavar="PATH",
        help="SQLite file each test's outcome is recorded in (default: "
        "<results>/trends.sqlite; 'off' records nothing).",
    )
    group.addoption(
        "--peerlab-impacted",
        default=None,
        metavar="REV",
        help="Run only the tests the change since git revision REV can affect.",
    )


def pytest_configure(config: pytest.Config) -> None:
    count = config.getoption("--peerlab-reruns")
    if count < 0:
        raise pytest.UsageError("--peerlab-reruns must be 0 or more")
    named = config.getoption("--peerlab-known-issues")
    try:
        known = known_issues.load(
            Path(named) if named else config.rootpath / known_issues.FILE, required=bool(named)
        )
    except PeerlabError as exc:
        raise pytest.UsageError(f"{exc.message} ({exc.hint})") from None
    trends = config.getoption("--peerlab-trends")
    results = Path(config.getoption("--peerlab-results"))
    path = None if trends == "off" else Path(trends) if trends else results / "trends.sqlite"
    config.pluginmanager.register(Automation(_State(count, known, path)), "peerlab-automation")


class Automation:
    """The hooks, with this session's state."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.impact_note: str | None = None

    # -------------------------------------------------------------- selection and contexts

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        rev = config.getoption("--peerlab-impacted")
        if rev is None:
            return
        from peerlab.automation import impact

        try:
            root = impact.repo_root(config.rootpath)
            results = Path(config.getoption("--peerlab-results"))
            found = impact.impacted(root, rev, impact.load_map(results / "impact-map.json"))
        except PeerlabError as exc:
            raise pytest.UsageError(f"--peerlab-impacted: {exc.message}") from None
        self.impact_note = (
            "every test: " + "; ".join(found.reasons)
            if found.everything
            else f"{sum(found.select(i.nodeid) for i in items)} of {len(items)} tests "
            f"affected by the change since {rev}"
        )
        keep = [item for item in items if found.select(item.nodeid)]
        dropped = [item for item in items if not found.select(item.nodeid)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_report_collectionfinish(self) -> str | None:
        return f"peerlab impacted: {self.impact_note}" if self.impact_note else None

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        coverage = _coverage()
        if coverage is not None:
            coverage.switch_context(nodeid)  # this test's lines, for the impact map

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        coverage = _coverage()
        if coverage is not None:
            coverage.switch_context("")

    # -------------------------------------------------------------- the protocol

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        state = self.state
        if state.reruns == 0 and not state.known.issues:
            return None  # pytest's own protocol
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = _attempt(item, nextitem, 1, None)
        attempts = [_result(item, 1, reports)]
        facts: dict[str, Any] = {"seed": attempts[0].seed}
        issue = None
        if not attempts[0].passed:
            text = "\n".join(r.longreprtext for r in reports if r.failed)
            issue = state.known.match(item.nodeid, text)
        if issue is not None:
            for report in reports:
                if report.failed:
                    report.outcome = "skipped"
                    report.wasxfail = issue.describe()
            facts["known_issue"] = issue.link
        elif not attempts[0].passed and state.reruns:
            final = reports
            while (seed := reruns.next_seed(attempts, state.reruns)) is not False:
                number = len(attempts) + 1
                final = _attempt(item, nextitem, number, seed if isinstance(seed, int) else None)
                attempts.append(_result(item, number, final))
            classification = reruns.classify(attempts)
            text = reruns.summary(classification, attempts)
            reruns.write_record(classification, attempts)
            facts["classification"] = classification
            # Flaky: the passing attempt stands. A real failure: the first, with its seed.
            reports = final if classification == reruns.FLAKY else reports
            for report in reports:
                report.sections.append(("peerlab reruns", text))
        for report in reports:
            report.user_properties.append((PROPERTY, facts))
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    # -------------------------------------------------------------- outcomes (controller)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail") and report.skipped:
            outcome = "xfailed"
        elif report.when == "call" or not report.passed:
            outcome = report.outcome
        else:
            outcome = "passed"
        facts: dict[str, Any] = next(
            (dict(v) for k, v in report.user_properties if k == PROPERTY and isinstance(v, dict)),
            {},
        )
        known = self.state.outcomes.get(report.nodeid)
        if known is not None and SEVERITY[known.outcome] >= SEVERITY[outcome]:
            outcome = known.outcome
        seconds = report.duration + (known.seconds or 0.0 if known else 0.0)
        self.state.outcomes[report.nodeid] = Outcome(
            report.nodeid,
            outcome,
            facts.get("classification"),
            facts.get("seed"),
            facts.get("known_issue"),
            round(seconds, 3),
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config, state = session.config, self.state
        if hasattr(config, "workerinput") or not state.outcomes or state.trends is None:
            return
        with OutcomeStore(state.trends) as store:
            store.record(state.outcomes.values())
            state.suite = store.suite_flake_rate()
            for issue in state.known.issues:
                tests = [issue.test] if issue.test else store.tests_of_issue(issue.link)
                streaks = [store.passes_in_a_row(test) for test in tests]
                if streaks and min(streaks) >= state.known.looks_fixed_after:
                    state.looks_fixed.append((issue, min(streaks)))
            rates = store.flake_rates()
        from peerlab.automation.suite_report import write_suite_report

        results = Path(config.getoption("--peerlab-results"))
        outcomes = list(state.outcomes.values())
        fixed = [(issue.link, streak) for issue, streak in state.looks_fixed]
        state.suite["report"] = str(
            write_suite_report(results, outcomes, state.suite, rates, fixed)
        )

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        state = self.state
        if hasattr(config, "workerinput"):
            return
        rerun = [o for o in state.outcomes.values() if o.classification]
        write = terminalreporter.write_line
        if rerun or state.looks_fixed:
            terminalreporter.section("peerlab reruns and known issues")
        for outcome in sorted(rerun, key=lambda o: (str(o.classification), o.test)):
            seed = f" (seed {outcome.seed})" if outcome.seed is not None else ""
            write(f"{str(outcome.classification).upper()}{seed} {outcome.test}")
        for issue, streak in state.looks_fixed:
            what = issue.test or issue.signature
            write(f"LOOKS FIXED {issue.link} ({what}): passed {streak} runs in a row")
        if state.suite is not None:
            suite = state.suite
            write(
                f"peerlab: suite flake rate {suite['flake_rate']:.1%} over the last "
                f"{suite['suites']} runs ({suite['flaky']} flaky of {suite['test_runs']} test "
                f"runs); report: {suite.get('report')}"
            )


def _attempt(
    item: pytest.Item, nextitem: pytest.Item | None, number: int, seed: int | None
) -> list[pytest.TestReport]:
    item.stash[reruns.ATTEMPT] = number
    if number > 1 and seed is not None:
        item.stash[reruns.FORCED_SEED] = seed
    with contextlib.suppress(KeyError):
        del item.stash[reruns.USED_SEED]
    with contextlib.suppress(KeyError):
        del item.stash[reruns.RESULTS]
    return runtestprotocol(item, log=False, nextitem=nextitem)


def _result(item: pytest.Item, number: int, reports: list[pytest.TestReport]) -> reruns.Attempt:
    return reruns.Attempt(
        number,
        item.stash.get(reruns.USED_SEED, None),
        not any(r.failed for r in reports),
        item.stash.get(reruns.RESULTS, None),
    )


def _coverage() -> Any:
    """The coverage.py measurement running in this process, if any."""
    try:
        from coverage import Coverage
    except ImportError:
        return None
    return Coverage.current()
