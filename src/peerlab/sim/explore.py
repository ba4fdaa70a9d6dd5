"""Many seeds of one simulated scenario at once, in worker processes: which seeds fail, how,
and the line that replays each.

    for summary in explore("chaos", range(1, 201), jobs=2, results=Path("peerlab-results")):
        ...                 # one per seed, as each ends (`summary["replay"]` for failures)

A seed that fails is run once more with its results folder written (history, timeline,
result.json, the plan that replays it exactly): the run is deterministic, so the second run
is the first one again, now with its artifacts.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from peerlab.plan import Plan
from peerlab.sim.runs import run, scenario


def run_seed(name: str, seed: int, params: dict[str, Any], results: Path | None) -> dict[str, Any]:
    """One seed, in a worker: its summary (with a results folder when it failed)."""
    plan = Plan(name, seed, params)
    outcome = run(plan)
    if outcome.failed and results is not None:
        outcome = run(plan, results / f"{name}-seed{seed}")
    return outcome.summary()


def explore(
    name: str,
    seeds: Iterable[int],
    *,
    jobs: int = 1,
    params: dict[str, Any] | None = None,
    results: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """Run `name` once per seed on `jobs` worker processes; each seed's summary as it ends."""
    scenario(name)  # an unknown name is refused before any worker starts
    context = multiprocessing.get_context("spawn")  # workers start clean: no threads, no loop
    with ProcessPoolExecutor(max(1, jobs), mp_context=context) as pool:
        pending: list[Future[dict[str, Any]]] = [
            pool.submit(run_seed, name, seed, dict(params or {}), results) for seed in seeds
        ]
        for done in as_completed(pending):
            yield done.result()
