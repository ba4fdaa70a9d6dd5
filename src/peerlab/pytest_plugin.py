"""peerlab's pytest face (registered through the `pytest11` entry point).

Fixtures: `peerlab_env` (a fresh, isolated Environment per test; closed even when the test
fails) and `peerlab_seed`. Every test that uses them writes
`peerlab-results/<test id>/result.json`; a failing one also keeps its node logs, the history
and a snapshot of each node's data dir there, and prints its seed and the command that
replays it. `--peerlab-keep` leaves a failed test's network running under a supervisor, so
the CLI can attach to it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.seed import new_seed

RESULTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peerlab")
    group.addoption(
        "--peerlab-seed",
        type=int,
        default=None,
        help="Seed for every random choice (replays a failing run).",
    )
    group.addoption(
        "--peerlab-keep",
        action="store_true",
        default=False,
        help="Leave a failed test's network running; prints how to attach.",
    )
    group.addoption(
        "--peerlab-results",
        default="peerlab-results",
        help="Where per-test artifacts go (default: peerlab-results).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peerlab: a scenario that runs a peerlab Environment")


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


@pytest.fixture
def peerlab_seed(request: pytest.FixtureRequest) -> int:
    seed = request.config.getoption("--peerlab-seed")
    return int(seed) if seed is not None else new_seed()


@pytest.fixture
def peerlab_env(request: pytest.FixtureRequest, peerlab_seed: int) -> Iterator[Environment]:
    """A fresh Environment for this test: own addresses, ports and dirs; always cleaned up."""
    item = request.node
    results = Path(request.config.getoption("--peerlab-results")) / test_dir_name(item.nodeid)
    began = time.time()
    env = Environment(test_dir_name(item.name)[:40], seed=peerlab_seed, artifacts=results)
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
                if request.config.getoption("--peerlab-keep") and env.nodes:
                    kept = _keep(env, item.nodeid)
                    outcome["kept_env"] = kept
        finally:
            if kept is None:
                env.close()
            results.mkdir(parents=True, exist_ok=True)
            (results / "result.json").write_text(json.dumps(outcome, indent=2, default=str))


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
