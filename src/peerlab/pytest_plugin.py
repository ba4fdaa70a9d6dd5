"""peerlab's pytest face (registered through the `pytest11` entry point).

Fixtures: `peerlab_env` (a fresh, isolated Environment per test; closed even when the test
fails), `peerlab_seed` and `peerlab_backend`. Tests run on `--peerlab-backend` (default
local); a test marked `sim` also runs on the simulator (its id says which: `[local]`,
`[sim]`), the same scenario code on both; with `--peerlab-backend sim`, only the tests marked
`sim` run, and the others are skipped. Every test that uses them writes
`peerlab-results/<test id>/`: result.json (seed, verdicts, timings, versions), the history,
the merged timeline and junit.xml; a failing one also keeps its node logs, a snapshot of each
node's data dir and state, and report.html there, and prints its seed and the command that
replays it. `--peerlab-keep` leaves a failed test's network running under a supervisor, so
the CLI can attach to it. A failed test on the simulator whose scenario left its plan in the
history is shrunk (`--peerlab-shrink N` runs at most, 0: never): the smallest plan that
fails the same way is written beside the artifacts and printed as a replay command.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerlab import backends
from peerlab.env import Environment
from peerlab.seed import new_seed
from peerlab.systems.plugins import plugins

RESULTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
SIM = "sim"  # the marker, and the backend it adds
SHRINK_TRIES = 40


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peerlab: a scenario that runs a peerlab Environment")
    config.addinivalue_line(
        "markers", f"{SIM}: the scenario runs on the sim backend too (docs/sim.md)"
    )
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
    return int(seed) if seed is not None else new_seed()


@pytest.fixture
def peerlab_env(
    request: pytest.FixtureRequest, peerlab_seed: int, peerlab_backend: str
) -> Iterator[Environment]:
    """A fresh Environment for this test: own addresses, ports and dirs; always cleaned up."""
    item = request.node
    results = Path(request.config.getoption("--peerlab-results")) / test_dir_name(item.nodeid)
    began = time.time()
    env = Environment(
        test_dir_name(item.name)[:40],
        seed=peerlab_seed,
        artifacts=results,
        backend=peerlab_backend,
    )
    try:
        yield env
    finally:
        reports = item.stash.get(RESULTS_KEY, {})
        failed = any(r.failed for r in reports.values())
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
