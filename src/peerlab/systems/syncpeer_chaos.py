"""Randomized chaos for syncpeer, as a plan: seeded faults of every kind and seeded writes on a
few mutual friends, then heal; convergence, no lost acknowledged write and no sync loop must
hold (TC-751, TC-752).

The same code runs on real processes (tests/e2e/chaos) and on the simulator, where many
seeds run at once (`peerlab sim explore --scenario chaos`) and a failing plan shrinks to
the smallest schedule that still fails (`peerlab sim shrink`).

    chaos(env, Plan("chaos", seed, {"peers": 5, "seconds": 8, "mean_gap": 0.5}))

Parameters: `peers` (5), `seconds` of faults and writes (8), `mean_gap` between faults
(0.5), `kinds` of faults (all), `mutants` switched on in every node ("": none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peerlab.nemesis.runner import NemesisRunner
from peerlab.nemesis.schedule import Schedule
from peerlab.node import node_name
from peerlab.plan import PLAN_EVENT, Plan, Ran
from peerlab.systems.syncpeer import SyncpeerAdapter, SyncpeerClient
from peerlab.systems.syncpeer_checks import check_sync
from peerlab.workload.files import FileWorkload, TimedOp, run_files, run_ops

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

DEFAULTS = {"peers": 5, "seconds": 8.0, "mean_gap": 0.5, "kinds": "all", "mutants": ""}
WRITE_TIMEOUT = 2.0  # a write to a frozen peer ends as "info" after this long
FAULT_SECONDS = (0.5, 5.0)
CONVERGE_SECONDS = 60.0


def params_of(plan: Plan) -> dict[str, object]:
    return {**DEFAULTS, **plan.params}


def chaos(env: EnvironmentAPI, plan: Plan) -> Ran:
    """Start the peers, run the plan's faults and writes, heal, check."""
    params = params_of(plan)
    names = [node_name(i) for i in range(int(str(params["peers"])))]
    seconds = float(str(params["seconds"]))
    for name in names:
        if params["mutants"]:
            env.node_env.setdefault(name, {})["SYNCPEER_MUTANTS"] = str(params["mutants"])
        env.clock_skews.setdefault(name, 0.0)  # able to take a clock skew at once
    env.start("syncpeer", names)
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    adapter.befriend_graph([(a, b) for i, a in enumerate(names) for b in names[i + 1 :]])
    kinds = tuple(str(params["kinds"]).split(","))
    if plan.steps is None:
        schedule = Schedule.generate(
            plan.seed,
            names,
            seconds,
            kinds,
            mean_gap=float(str(params["mean_gap"])),
            fault_seconds=FAULT_SECONDS,
            byzantine_modes=SyncpeerAdapter.byzantine.modes,
        )
    else:
        schedule = Schedule(plan.seed, tuple(names), seconds, kinds, plan.steps)
    clients = {name: SyncpeerClient(env, env.node(name), timeout=WRITE_TIMEOUT) for name in names}

    def live() -> list[str]:
        return [node.name for node in env.live_nodes()]

    done: list[TimedOp] = []
    with NemesisRunner(env, schedule, clock=env.clock) as nemesis:
        if plan.ops is None:
            workload = FileWorkload(plan.seed)
            writes = run_files(
                workload, clients.__getitem__, live, seconds, clock=env.clock, done=done
            )
        else:
            writes = run_ops(list(plan.ops), clients.__getitem__, env.clock)
            done = list(plan.ops)
        finished = nemesis.wait(seconds + 120)
    verdicts = check_sync(env, timeout=CONVERGE_SECONDS)
    facts = {
        "writes": writes,
        "nemesis_finished": finished,
        "nemesis": nemesis.report(),
        "states": {node.name: str(node.state) for node in env},
    }
    ran = Ran(plan.drawn(schedule.steps, tuple(done)), verdicts, facts)
    env.history.event(PLAN_EVENT, None, **ran.plan.to_json())  # what replays (and shrinks) it
    return ran
