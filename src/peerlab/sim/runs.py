"""One simulated run of a plan: a fresh Environment on the sim backend, the plan's scenario,
its verdicts, and the run's fingerprint (the SHA-256 of its history), with the results
folder a real run writes when asked (history, timeline, result.json with the seed and the
replay line, the plan that replays it exactly).

    outcome = run(Plan("chaos", seed=7), results=Path("peerlab-results/chaos-7"))
    outcome.failed          # the checkers that found a violation: () when it passed
    outcome.replay          # peerlab sim run --plan .../plan.json

Scenarios are named in `SCENARIOS` ("module:function" taking an Environment and a Plan,
returning a `Ran`); a run that raises is a failure of the checker "error".
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.plan import Plan, Ran
from peerlab.report.results import write_results
from peerlab.sim.clock import VirtualClock

SCENARIOS: dict[str, str] = {
    "chaos": "peerlab.systems.syncpeer_chaos:chaos",
    "swarm": "peerlab.systems.syncpeer_swarm:swarm",
}
ERROR = "error"  # the checker name of a run that raised


def scenario(name: str) -> Any:
    if name not in SCENARIOS:
        raise UsageError(
            f"there is no simulated scenario {name!r}",
            field="--scenario",
            hint=f"one of: {', '.join(SCENARIOS)}",
        )
    module, _, attr = SCENARIOS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class Outcome:
    """A finished run: what it planned and drew, what it found, what it cost."""

    plan: Plan
    verdicts: list[Verdict]
    error: str | None
    history_sha256: str
    events: int
    sim_seconds: float
    wall_seconds: float
    facts: dict[str, Any] = field(default_factory=dict)
    results: Path | None = None

    @property
    def failed(self) -> tuple[str, ...]:
        """The checkers whose verdict is not valid ("error" if the run raised), sorted."""
        names = {v.checker for v in self.verdicts if not v.ok}
        return tuple(sorted(names | ({ERROR} if self.error else set())))

    @property
    def replay(self) -> str:
        if self.results is not None:
            return f"peerlab sim run --plan {self.results / 'plan.json'}"
        return f"peerlab sim run --scenario {self.plan.scenario} --seed {self.plan.seed}"

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.plan.scenario,
            "seed": self.plan.seed,
            "passed": not self.failed,
            "failed": list(self.failed),
            "error": self.error,
            "history_sha256": self.history_sha256,
            "events": self.events,
            "sim_seconds": round(self.sim_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "replay": self.replay,
            "results": None if self.results is None else str(self.results),
        }


# A simulation makes millions of short-lived objects (messages, timers, effects) and keeps a
# large heap of long-lived ones (every node's state): collecting the youngest generation
# every 700 allocations, as Python does by default, walks it about a tenth of a run's time.
# Many objects live for a few simulated seconds (a poll's timeout timer, an RPC in flight):
# collected every 100,000 allocations they survive into the middle generation, whose
# collections then took a tenth of a 10,000-peer run; every 1,000,000, most die young.
YOUNG_COLLECTION = 1_000_000  # allocations between collections of the youngest generation
# A full collection walks that whole heap (tens of millions of objects at 10,000 nodes, 4 s
# each), while the cycles that outlive two younger collections are few: a full collection
# waits for 1,000 middle ones instead of Python's 10.
FULL_COLLECTION = 1_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, thresholds[1], FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        # The run's world is one big web of cycles, garbage now: freed at once, not left
        # for a full collection that may come only during the next run (whose peak memory
        # would then hold both).
        gc.collect()


def run(plan: Plan, results: Path | None = None) -> Outcome:
    """Run `plan` on a new simulated network; with `results`, write its results folder."""
    with _fewer_collections():
        return _outcome(plan, results)


def _outcome(plan: Plan, results: Path | None) -> Outcome:
    function = scenario(plan.scenario)
    began = time.perf_counter()
    # The environment's own workdir, registered with its reaper: removed when the run ends
    # (a SIGTERM unwinds to it: `peerlab sim run`), swept at the next start after a SIGKILL.
    env = Environment(f"sim-{plan.scenario}", seed=plan.seed, backend="sim", artifacts=results)
    with env:
        ran, error = _run(function, env, plan)
        clock = env.clock
        events = clock.loop.events if isinstance(clock, VirtualClock) else 0
        outcome = Outcome(
            ran.plan,
            ran.verdicts,
            error,
            _sha256(env.history.path),  # the run's own record, before any artifact
            events,
            clock.monotonic(),
            0.0,
            ran.facts,
            results,
        )
        if results is not None:
            ran.plan.save(results / "plan.json")
            write_results(
                env,
                results,
                outcome="passed" if not outcome.failed else "failed",
                test=f"sim:{plan.scenario}",
                replay=outcome.replay,
                failure={"message": error or ", ".join(outcome.failed)} if outcome.failed else None,
                state=bool(outcome.failed),
            )
    outcome.wall_seconds = time.perf_counter() - began
    return outcome


def _run(function: Any, env: Environment, plan: Plan) -> tuple[Ran, str | None]:
    try:
        ran: Ran = function(env, plan)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        verdict = Verdict(ERROR, "invalid", message, traceback.format_exc())
        env.record_verdict(verdict)
        return Ran(plan, [verdict]), message
    return ran, None


def _sha256(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()
