"""`peerlab sim run | explore | shrink`: simulated runs of a scenario, many seeds at once, and
the smallest schedule that still fails.

    peerlab sim run --scenario chaos --seed 7            one run; its results folder
    peerlab sim run --plan peerlab-results/chaos-seed7/plan.json      exactly that run again
    peerlab sim explore --scenario chaos --seeds 200 --jobs 2         failing seeds, replays
    peerlab sim shrink peerlab-results/chaos-seed7       the smallest plan that fails alike

Each failing run keeps its results folder (history, timeline, result.json, plan.json), the
line that replays it, and, after `shrink`, the shrunk plan beside the original.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import typer

from peerlab.cli.common import console, print_json
from peerlab.errors import UsageError
from peerlab.plan import Plan
from peerlab.sim.explore import explore
from peerlab.sim.runs import Outcome, run, scenario
from peerlab.sim.shrink import DEFAULT_TRIES, shrink

sim_app = typer.Typer(
    help="The deterministic simulator: runs, many seeds, shrinking (docs/sim.md).",
    no_args_is_help=True,
)
RESULTS = Path("peerlab-results")


def _params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise UsageError(
                f"--param {value!r} is not KEY=VALUE", field="--param", hint="e.g. --param peers=8"
            )
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _unwind_on_sigterm() -> None:
    """A SIGTERM ends the run as Ctrl-C does: its environment closes, nothing is left."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _show(outcome: Outcome) -> None:
    verdict = "[green]passed[/]" if not outcome.failed else f"[red]FAILED[/] {outcome.failed}"
    console.print(
        f"{outcome.plan.scenario} seed {outcome.plan.seed}: {verdict}; "
        f"{outcome.sim_seconds:.1f} simulated seconds in {outcome.wall_seconds:.1f}s, "
        f"{outcome.events} events; history sha256 {outcome.history_sha256[:16]}"
    )
    if outcome.results is not None:
        console.print(f"results: {outcome.results}")
    if outcome.failed:
        console.print(f"replay: {outcome.replay}")


@sim_app.command("run")
def sim_run(
    name: str = typer.Option("chaos", "--scenario", "-s", help="The simulated scenario."),
    seed: int = typer.Option(1, "--seed", help="The run's seed."),
    plan_file: Path | None = typer.Option(None, "--plan", help="Run exactly this plan.json."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE for the scenario."),
    results: Path | None = typer.Option(None, "--results", help="The results folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Run one plan on a simulated network and write its results folder."""
    plan = Plan.load(plan_file) if plan_file else Plan(name, seed, _params(param))
    scenario(plan.scenario)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = results or RESULTS / f"sim-{plan.scenario}-seed{plan.seed}-{stamp}"
    _unwind_on_sigterm()
    outcome = run(plan, target.resolve())
    if as_json:
        print_json(outcome.summary())
    else:
        _show(outcome)
    if outcome.failed:
        raise typer.Exit(1)


@sim_app.command("explore")
def sim_explore(
    name: str = typer.Option("chaos", "--scenario", "-s", help="The simulated scenario."),
    seeds: int = typer.Option(100, "--seeds", help="How many seeds."),
    first: int = typer.Option(1, "--first", help="The first seed."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE for the scenario."),
    results: Path = typer.Option(RESULTS, "--results", help="Where failing runs go."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per seed."),
) -> None:
    """Run many seeds in parallel worker processes; list each failing seed and its replay."""
    if seeds < 1 or jobs < 1:
        raise UsageError(
            f"--seeds {seeds} --jobs {jobs}", field="--seeds", hint="both must be 1 or more"
        )
    began = time.perf_counter()
    failures: list[dict[str, Any]] = []
    done = 0
    chosen = range(first, first + seeds)
    for summary in explore(name, chosen, jobs=jobs, params=_params(param), results=results):
        done += 1
        if as_json:
            typer.echo(json.dumps(summary))
        elif summary["failed"]:
            console.print(f"seed {summary['seed']}: [red]FAILED[/] {summary['failed']}")
        if summary["failed"]:
            failures.append(summary)
    wall = time.perf_counter() - began
    if not as_json:
        console.print(
            f"{done} seeds of {name} in {wall:.1f}s on {jobs} worker(s): "
            f"{done - len(failures)} passed, {len(failures)} failed"
        )
        for failure in sorted(failures, key=lambda f: f["seed"]):
            console.print(f"  seed {failure['seed']} {failure['failed']}: {failure['replay']}")
    if failures:
        raise typer.Exit(1)


@sim_app.command("shrink")
def sim_shrink(
    run_dir: Path = typer.Argument(..., help="A failing run's results folder (or plan.json)."),
    tries: int = typer.Option(DEFAULT_TRIES, "--tries", help="At most this many runs."),
) -> None:
    """The smallest plan (fewer faults, shorter faults, fewer writes) that still fails the
    same way; printed as a replay command."""
    path = run_dir / "plan.json" if run_dir.is_dir() else run_dir
    plan = Plan.load(path)
    console.print(f"running {path} to see how it fails ...")
    first = run(plan)
    if not first.failed:
        raise UsageError(f"{path} passes: there is nothing to shrink", field="RUN")
    console.print(f"it fails with {first.failed}; shrinking (at most {tries} runs) ...")

    def tried(candidate: Plan, outcome: Outcome, same: bool) -> None:
        steps, ops = len(candidate.steps or ()), len(candidate.ops or ())
        mark = "still fails" if same else "passes or fails otherwise"
        console.print(f"  {steps} faults, {ops} writes: {mark}")

    shrunk = shrink(first.plan, first.failed, tries=tries, on_try=tried)
    target = path.with_name("plan.shrunk.json")
    shrunk.plan.save(target)
    summary = shrunk.summary()
    console.print(
        f"shrunk: faults {summary['steps']}, writes {summary['ops']} in {shrunk.tries} runs"
    )
    for line in [step.describe() for step in shrunk.plan.steps or ()]:
        console.print(f"  {line}")
    console.print(f"replay: peerlab sim run --plan {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")
