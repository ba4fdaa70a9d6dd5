"""peerlab's pytest face (registered through the `pytest11` entry point).

Fixtures: `peerlab_env` (a fresh, isolated Environment per test; closed even when the test
fails), `peerlab_seed` and `peerlab_backend`. Tests run on `--peerlab-backend` (default
local); a test marked `sim` also runs on the simulator (its id says which: `[local]`,
`[sim]`), the same scenario code on both; with `--peerlab-backend sim`, only the tests marked
`sim` run, and the others are skipped. Every test that uses them writes
`peerlab-results/<test id>/` (`--peerlab-results DIR` elsewhere): a passing one only
result.json (seed, verdicts, timings, versions) and junit.xml, unless
`--peerlab-artifacts all`; a failing one also the history, the merged timeline, its node
logs, a snapshot of each node's data dir and state, and report.html, and prints its seed and
the command that replays it. The session's summary says where they went. `--peerlab-keep`
leaves a failed test's network running under a supervisor, so the CLI can attach to it. A
test whose docstring names a TC id ("TC-002") can be selected by it: `pytest -k TC002`. A
failed test on the simulator whose scenario left its plan in the history is shrunk
(`--peerlab-shrink N` runs at most, 0: never): the smallest plan that fails the same way is
written beside the artifacts and printed as a replay command.

Before the network is torn down, the final checks other plugins contribute run
(`pytest_peerlab_final_checks`, see peerlab.pytest_hooks: syncpeer's checks that no secret left a
peer); an invalid verdict fails the test at teardown, naming the checker and where.
Fault fidelity is one of them, built in: a test that applied a partition or a fault aimed at a
node fails if a cut link carried bytes or a connection was refused because its source could
not be told (peerlab.checkers.fidelity), naming the link, the interval and the byte count.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerlab import backends, pytest_hooks
from peerlab.api import EnvironmentAPI
from peerlab.automation import reruns
from peerlab.checkers.verdict import Verdict
from peerlab.env import Environment
from peerlab.names import remove_tree
from peerlab.seed import new_seed
from peerlab.systems.plugins import plugins

RESULTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SIM = "sim"  # the marker, and the backend it adds
SHRINK_TRIES = 40
# Reruns, known issues, per-test outcomes, change-impact selection (docs/test-automation.md).
pytest_plugins = ["peerlab.automation.plugin"]
WRITTEN_KEY = pytest.StashKey[list[Path]]()
# "TC-002", "TC 002", "TC002" in a docstring: the test's id in its plan.
TC_ID = re.compile(r"\bTC[- ]?(\d+)\b")
# What a passing test keeps, unless --peerlab-artifacts all.
PASSING_KEEPS = ("result.json", "junit.xml")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Make the TC ids in test docstrings selectable: `-k TC002` (and `-k TC-002` forms)."""
    for item in items:
        function = getattr(item, "function", None)
        for number in TC_ID.findall(getattr(function, "__doc__", None) or ""):
            item.extra_keyword_matches.add(f"TC{number}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written = config.stash.get(WRITTEN_KEY, [])
    if written:
        root = Path(config.getoption("--peerlab-results")).resolve()
        terminalreporter.write_line(
            f"peerlab: results of {len(written)} test(s) in {root} "
            "(`peerlab report DIR` summarises one)"
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peerlab")
    group.addoption(
        "--peerlab-seed",
        type=int,
        default=None,
        help="Seed for every random choice (replays a failing run).",
    )
    group.addoption(
        "--peerlab-backend",
        default=backends.DEFAULT,
        choices=backends.names(),
        help="Where every test's nodes run (default: local; docs/backends.md).",
    )
    group.addoption(
        "--peerlab-keep",
        action="store_true",
        default=False,
        help="Leave a failed test's network running; prints how to attach.",
    )
    group.addoption(
        "--peerlab-shrink",
        type=int,
        default=SHRINK_TRIES,
        help=f"Runs a failed simulated test may spend shrinking its plan (default {SHRINK_TRIES}; "
        "0: do not shrink).",
    )
    group.addoption(
        "--peerlab-results",
        default="peerlab-results",
        help="Where per-test artifacts go (default: peerlab-results).",
    )
    group.addoption(
        "--peerlab-artifacts",
        default="failed",
        choices=["failed", "all"],
        help="failed (default): passing tests keep only result.json and junit.xml; "
        "all: every test keeps its history and timeline too.",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(pytest_hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peerlab: a scenario that runs a peerlab Environment")
    config.addinivalue_line(
        "markers", f"{SIM}: the scenario runs on the sim backend too (docs/sim.md)"
    )
    config.addinivalue_line(
        "markers",
        "peerlab_skip_checks(*names): final checks (pytest_peerlab_final_checks) not to run at the "
        "end of this test, e.g. one that provokes what the check finds",
    )
    # Before pytest (or xdist) starts a thread: the netns backend without root enters a user
    # namespace here, and the workers xdist starts inherit it.
    backends.enter(config.getoption("--peerlab-backend"))
    for plugin in plugins():  # systems' own fixtures and helpers (syncpeer: syncpeer_net)
        if plugin.pytest is not None and not config.pluginmanager.has_plugin(plugin.pytest):
            config.pluginmanager.import_plugin(plugin.pytest)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(RESULTS_KEY, {})[report.when] = report
    return report


def test_dir_name(nodeid: str) -> str:
    """A file-system-safe name for a test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__")).strip("_")[:150]


def backends_for(chosen: str, marked_sim: bool) -> list[str]:
    """The backends a test runs on: the chosen one, and the simulator for a test marked
    `sim`; none for an unmarked test when the simulator was chosen."""
    if not marked_sim:
        return [] if chosen == SIM else [chosen]
    return [chosen] if chosen == SIM else [chosen, SIM]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "peerlab_backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--peerlab-backend")
    marked = metafunc.definition.get_closest_marker(SIM) is not None
    runs = backends_for(chosen, marked)
    if marked and chosen != SIM:
        metafunc.parametrize("peerlab_backend", runs, ids=runs, scope="function")


@pytest.fixture
def peerlab_backend(request: pytest.FixtureRequest) -> str:
    """Where this test's nodes run (a test marked `sim` gets each backend in turn)."""
    chosen = str(request.config.getoption("--peerlab-backend"))
    marked = request.node.get_closest_marker(SIM) is not None
    if not backends_for(chosen, marked):
        pytest.skip(f"not marked `{SIM}`: the scenario needs real processes")
    return chosen


@pytest.fixture
def peerlab_seed(request: pytest.FixtureRequest) -> int:
    seed = request.config.getoption("--peerlab-seed")
    return reruns.seed_for(request.node, int(seed) if seed is not None else new_seed())


@pytest.fixture
def peerlab_env(
    request: pytest.FixtureRequest, peerlab_seed: int, peerlab_backend: str
) -> Iterator[Environment]:
    """A fresh Environment for this test: own addresses, ports and dirs; always cleaned up."""
    item = request.node
    base = Path(request.config.getoption("--peerlab-results"))
    results = reruns.results_dir(item, base, test_dir_name(item.nodeid))
    began = time.time()
    env = Environment(
        test_dir_name(item.name)[:40],
        seed=peerlab_seed,
        artifacts=results,
        backend=peerlab_backend,
    )
    violated: list[str] = []
    try:
        yield env
    finally:
        violated = _final_checks(env, item)
        reports = item.stash.get(RESULTS_KEY, {})
        failed = any(r.failed for r in reports.values()) or bool(violated)
        replay = f"pytest '{item.nodeid}' --peerlab-seed {env.seed}"
        outcome: dict[str, Any] = {
            "test": item.nodeid,
            "seed": env.seed,
            "outcome": "failed" if failed else "passed",
            "seconds": round(time.time() - began, 3),
            "replay": replay,
            "nodes": [n.describe() for n in env.nodes.values()],
        }
        kept = None
        try:
            if failed:
                env.save_artifacts(results, snapshot=True)
                item.add_report_section(
                    "teardown",
                    "peerlab",
                    f"seed {env.seed}; replay: {replay}\nartifacts: {results}",
                )
            outcome.update(_observe(env, item, results, outcome, reports))
            if failed and request.config.getoption("--peerlab-keep") and env.nodes:
                kept = _keep(env, item.nodeid)
                outcome["kept_env"] = kept
        finally:
            if kept is None:
                env.close()
            tries = request.config.getoption("--peerlab-shrink")
            if failed and peerlab_backend == SIM and tries > 0:
                outcome["shrunk"] = _shrink(env, item, results, tries)
            results.mkdir(parents=True, exist_ok=True)
            (results / "result.json").write_text(json.dumps(outcome, indent=2, default=str))
            if not failed and request.config.getoption("--peerlab-artifacts") == "failed":
                _keep_only(results, PASSING_KEEPS)
            request.config.stash.setdefault(WRITTEN_KEY, []).append(results)
    if violated:
        pytest.fail(
            "\n".join([*violated, f"replay: {replay}; artifacts: {results}"]), pytrace=False
        )


def _final_checks(env: Environment, item: pytest.Item) -> list[str]:
    """Run the checks plugins contribute; record every verdict; the failure messages."""
    skip = frozenset(
        name for mark in item.iter_markers("peerlab_skip_checks") for name in mark.args
    )
    try:
        verdicts = [
            v for found in item.ihook.pytest_peerlab_final_checks(env=env, skip=skip) for v in found
        ]
    except Exception as exc:  # a network that cannot be checked cannot be vouched for
        return [f"final checks could not run: {exc!r}"]
    messages = []
    for verdict in verdicts:
        env.record_verdict(verdict)
        if verdict.valid == "invalid":
            evidence = json.dumps(verdict.evidence, default=str)[:3000]
            messages.append(f"{verdict.checker}: {verdict.summary}\n  evidence: {evidence}")
    return messages


@pytest.hookimpl
def pytest_peerlab_final_checks(env: EnvironmentAPI, skip: frozenset[str]) -> list[Verdict]:
    """Fault fidelity, for a test that cut links or aimed faults at nodes: a cut link that
    carried bytes, or a connection refused because its source could not be told."""
    from peerlab.checkers.fidelity import fault_fidelity, needs_fidelity

    if "fault-fidelity" in skip or not env.net.enabled:
        return []
    if not needs_fidelity(env.history.entries()):
        return []
    env.net.sample()  # closes the last interval if a partition is still on
    return [fault_fidelity(env.history.entries())]


def _observe(
    env: Environment,
    item: pytest.Item,
    results: Path,
    outcome: dict[str, Any],
    reports: dict[str, pytest.TestReport],
) -> dict[str, Any]:
    """The run's timeline, verdicts, timings, JUnit XML (and, failed, state and report.html).

    A problem here is reported, not raised: it must not change the test's own outcome.
    """
    from peerlab.report.results import write_results

    failed = outcome["outcome"] == "failed"
    bad = next((r for r in reports.values() if r.failed), None)
    failure = None
    if bad is not None:
        crash = getattr(bad.longrepr, "reprcrash", None)
        lines = bad.longreprtext.strip().splitlines()
        failure = {
            "when": bad.when,
            "message": getattr(crash, "message", None) or (lines[-1] if lines else "failed"),
            "text": bad.longreprtext[-6000:],
            "wall": getattr(bad, "stop", time.time()),
        }
    timings = {f"{when}_s": round(report.duration, 3) for when, report in reports.items()}
    try:
        return write_results(
            env,
            results,
            outcome=outcome["outcome"],
            test=item.nodeid,
            replay=outcome["replay"],
            failure=failure,
            timings=timings,
            copy_logs=False,
            snapshot=False,
            state=failed,
            html=failed,
        )
    except Exception as exc:  # the test's outcome stands; the problem is shown beside it
        item.add_report_section("teardown", "peerlab", f"results were not all written: {exc!r}")
        return {"results_error": repr(exc)}


def _shrink(env: Environment, item: pytest.Item, results: Path, tries: int) -> dict[str, Any]:
    """Shrink the plan the failed test's scenario ran; what came of it (also shown with the
    failure). A problem here is reported, never raised: the test's outcome stands."""
    from peerlab.plan import Plan
    from peerlab.sim.runs import run
    from peerlab.sim.shrink import shrink

    try:
        plan = Plan.last_in(env.history.entries())
        if plan is None:
            return {"shrunk": False, "why": "the test ran no plan"}
        first = run(plan)
        if not first.failed:
            why = "its plan passes on its own: the test's own assertions failed"
            return {"shrunk": False, "why": why}
        shrunk = shrink(first.plan, first.failed, tries=tries)
        plan.save(results / "plan.json")
        target = shrunk.plan.save(results / "plan.shrunk.json")
        steps = "\n".join(f"  {step.describe()}" for step in shrunk.plan.steps or ())
        summary = shrunk.summary()
        item.add_report_section(
            "teardown",
            "peerlab shrink",
            f"the smallest failing plan found ({summary['failed']}; faults {summary['steps']},"
            f" writes {summary['ops']}, {shrunk.tries} runs):\n{steps}\n"
            f"replay: peerlab sim run --plan {target}",
        )
        return {"shrunk": True, **summary, "plan": str(target)}
    except Exception as exc:
        item.add_report_section("teardown", "peerlab shrink", f"not shrunk: {exc!r}")
        return {"shrunk": False, "why": repr(exc)}


def _keep_only(folder: Path, names: tuple[str, ...]) -> None:
    """Remove from a test's own results folder everything but `names`."""
    for path in folder.iterdir():
        if path.name not in names:
            if path.is_dir() and not path.is_symlink():
                remove_tree(path, folder)
            else:
                path.unlink()


def _keep(env: Environment, nodeid: str) -> str:
    from peerlab import supervisor

    name = f"kept-{test_dir_name(nodeid)[-40:]}"
    supervisor.adopt(env, name)
    print(
        f"\npeerlab: the network of {nodeid} is still running as environment {name!r}.\n"
        f"  attach: peerlab --env {name} status\n"
        f"  stop:   peerlab --env {name} down"
    )
    return name
