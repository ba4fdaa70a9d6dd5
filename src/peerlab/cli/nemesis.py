"""`peerlab nemesis ...`: seeded fault schedules against a running network.

    peerlab nemesis plan --duration 30s --kinds partition,kill,latency [--seed N]
    peerlab nemesis run  --duration 30s --kinds partition,kill,latency [--seed N]
    peerlab nemesis skew B --by -1h        B's wall clock an hour behind (0s: back to real)
    peerlab nemesis byzantine B corrupt    B restarts lying to its peers (off: honest again)

`run` applies each fault on time from this process through the network's supervisor, prints
it, and heals everything at the end or on Ctrl-C. The seed defaults to the network's, so
`plan` shows exactly what `run` will do; the library face is
`peerlab.nemesis.NemesisRunner(env, Schedule.generate(...))`.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from peerlab.cli.common import console, print_json, remote_env, split_names
from peerlab.errors import UsageError
from peerlab.nemesis.runner import NemesisRunner
from peerlab.nemesis.schedule import ALL_KINDS, DEFAULT_KINDS, GROUPS, Schedule
from peerlab.supervisor import Remote
from peerlab.systems import DEFAULT_SYSTEM, byzantine_modes
from peerlab.units import parse_duration


def _signed_duration(text: str) -> float:
    """`-1h` -> -3600.0, `+30m` / `30m` -> 1800.0."""
    sign = -1.0 if text.startswith("-") else 1.0
    return sign * parse_duration(text.lstrip("+-"), "offset")


def _schedule(
    remote: Remote | None,
    duration: str,
    kinds: str,
    seed: int | None,
    nodes: str,
    every: str,
    max_impaired: int | None,
) -> Schedule:
    """The schedule for these options; what is not given comes from the running network."""
    status: dict[str, Any] = remote.call("env.status") if remote is not None else {}
    names = split_names(nodes) if nodes else [n["name"] for n in status["nodes"]]
    # The lying modes of the network's system (of the default system, planning offline).
    modes: list[str]
    if remote is not None:
        modes = next(iter(status["byzantine"].values()), [])
    else:
        modes = byzantine_modes(DEFAULT_SYSTEM)
    return Schedule.generate(
        status["seed"] if seed is None else seed,
        names,
        parse_duration(duration, "--duration"),
        split_names(kinds),
        mean_gap=parse_duration(every, "--every"),
        max_impaired=max_impaired,
        byzantine_modes=modes,
    )


KINDS_HELP = (
    f"Comma-separated fault kinds ({', '.join(ALL_KINDS)}) or groups "
    f"({', '.join(GROUPS)}). Default: {','.join(DEFAULT_KINDS)}."
)


def register(app: typer.Typer) -> None:
    nemesis_app = typer.Typer(
        help="Seeded fault schedules (faults over time).", no_args_is_help=True
    )
    app.add_typer(nemesis_app, name="nemesis")

    @nemesis_app.command("plan")
    def plan(
        ctx: typer.Context,
        duration: str = typer.Option("30s", "--duration", help="How long the schedule runs."),
        kinds: str = typer.Option(",".join(DEFAULT_KINDS), "--kinds", help=KINDS_HELP),
        seed: int | None = typer.Option(None, "--seed", help="Default: the network's seed."),
        nodes: str = typer.Option("", "--nodes", help="A,B,C (default: the network's)."),
        every: str = typer.Option("1.5s", "--every", help="Mean time between faults."),
        max_impaired: int | None = typer.Option(
            None, "--max-impaired", help="Most nodes down or lying at once (default: a minority)."
        ),
        as_json: bool = typer.Option(False, "--json", help="The schedule as JSON."),
    ) -> None:
        """Print the schedule `run` would apply, without touching the network."""
        remote = remote_env(ctx) if not (nodes and seed is not None) else None
        schedule = _schedule(remote, duration, kinds, seed, nodes, every, max_impaired)
        if as_json:
            print_json(schedule.to_dict())
        else:
            for line in schedule.describe():
                console.print(line, highlight=False)

    @nemesis_app.command("run")
    def run(
        ctx: typer.Context,
        duration: str = typer.Option("30s", "--duration", help="How long the schedule runs."),
        kinds: str = typer.Option(",".join(DEFAULT_KINDS), "--kinds", help=KINDS_HELP),
        seed: int | None = typer.Option(None, "--seed", help="Default: the network's seed."),
        every: str = typer.Option("1.5s", "--every", help="Mean time between faults."),
        max_impaired: int | None = typer.Option(
            None, "--max-impaired", help="Most nodes down or lying at once (default: a minority)."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON line per step."),
    ) -> None:
        """Apply a seeded schedule of faults to the running network, then heal it."""
        remote = remote_env(ctx)
        schedule = _schedule(remote, duration, kinds, seed, "", every, max_impaired)

        def show(record: dict[str, Any]) -> None:
            if as_json:
                typer.echo(json.dumps(record, default=str))
                return
            step = schedule.steps[record["step"]]
            error = f"  [red]failed: {record['error']}[/]" if "error" in record else ""
            console.print(
                f"{record['elapsed']:6.1f}s  {record['action']:<6} "
                f"{step.describe().split('  ', 1)[1]}{error}",
                highlight=False,
            )

        if not as_json:
            console.print(schedule.describe()[0] + "; Ctrl-C stops and heals", highlight=False)
        runner = NemesisRunner(remote.environment(), schedule, on_step=show)
        try:
            runner.run()
        except KeyboardInterrupt:
            console.print("stopping: healing the network")
            runner.stop()
        report = runner.report()
        if as_json:
            typer.echo(json.dumps({"report": report}, default=str))
        else:
            console.print(f"healed; {report['counts']}; {len(report['errors'])} error(s)")

    @nemesis_app.command("skew")
    def skew(
        ctx: typer.Context,
        peer: str = typer.Argument(..., help="The peer whose clock to move."),
        offset: str = typer.Option(..., "--by", help="-1h, +30m, 90s; 0s puts it back on time."),
    ) -> None:
        """Move a peer's wall clock (libfaketime); a peer not started under it restarts once."""
        seconds = _signed_duration(offset)
        result = remote_env(ctx).call("env.skew", name=peer, seconds=seconds)
        console.print(f"{peer}: clock {result['clock_skew']:+g}s from real time")

    @nemesis_app.command("byzantine")
    def byzantine(
        ctx: typer.Context,
        peer: str = typer.Argument(..., help="The peer that lies."),
        mode: str = typer.Argument(
            ...,
            help="corrupt, lie-size, lie-hash, lie-timestamp, "
            "selective, replay; off: honest again.",
        ),
    ) -> None:
        """Restart a peer lying to its friends in `mode` (docs/nemesis.md)."""
        if not mode:
            raise UsageError("no mode", field="mode", hint="e.g. corrupt, or off")
        remote_env(ctx).call("env.lie", name=peer, mode=mode)
        honest = mode == "off"
        console.print(f"{peer}: {'honest' if honest else 'lying: ' + mode} (restarted)")
