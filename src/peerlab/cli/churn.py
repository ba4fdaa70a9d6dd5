"""`peerlab churn --leave 2 --join 2 --every 30s`: peers leave and join a running network.

Runs in the foreground until `--periods`, `--for` or Ctrl-C, printing each period. The
choices are seeded (`--seed`, default the network's seed): the library face is
`peerlab.nemesis.churn.ChurnRunner(env, Churn(...), seed)`.
"""

from __future__ import annotations

import json

import typer

from peerlab.cli.common import console, remote_env, split_names
from peerlab.errors import UsageError
from peerlab.nemesis.churn import Churn, ChurnRunner, ChurnStep
from peerlab.seed import derive_rng
from peerlab.units import parse_duration


def register(app: typer.Typer) -> None:
    @app.command()
    def churn(
        ctx: typer.Context,
        leave: int = typer.Option(2, "--leave", help="Peers that leave each period."),
        join: int = typer.Option(2, "--join", help="Peers that join each period."),
        every: str = typer.Option("30s", "--every", help="The period (500ms, 30s, 2m...)."),
        periods: int | None = typer.Option(None, "--periods", help="Stop after N periods."),
        for_: str | None = typer.Option(None, "--for", help="Stop after this long (10m)."),
        seed: int | None = typer.Option(None, "--seed", help="Default: the network's seed."),
        fresh: bool = typer.Option(
            False, "--fresh", help="Joiners are new peers (default: peers that left return)."
        ),
        kill: bool = typer.Option(False, "--kill", help="Leavers are SIGKILLed, not stopped."),
        protect: str = typer.Option("", "--protect", help="Peers that never leave: A,B."),
        friends: int = typer.Option(
            0, "--friends", help="Each new peer befriends N live peers by fingerprint (syncpeer)."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON line per period."),
    ) -> None:
        """Peers leave and join every period, chosen by a seeded random draw."""
        period = parse_duration(every, "--every")
        duration = parse_duration(for_, "--for") if for_ else None
        if friends < 0:
            raise UsageError(f"--friends is {friends}", field="--friends", hint="0 or more")
        remote = remote_env(ctx)
        status = remote.call("env.status")
        run_seed = status["seed"] if seed is None else seed
        rng = derive_rng(run_seed, "churn-friends")

        def befriend(names: list[str]) -> None:
            if not friends:
                return
            live = sorted(
                p["name"]
                for p in remote.call("env.peers")
                if p["state"] == "running" and p["name"] not in names
            )
            for name in names:
                for other in sorted(rng.sample(live, min(friends, len(live)))):
                    remote.call("adapter.friend_add", a=name, b=other, via_dht=True)

        value = Churn(leave, join, period, fresh, kill, tuple(split_names(protect)))
        runner = ChurnRunner(remote.environment(), value, run_seed, on_join=befriend)

        def show(step: ChurnStep) -> None:
            if as_json:
                typer.echo(json.dumps(step.to_dict()))
                return
            console.print(
                f"period {step.period}: left {', '.join(step.left) or '-'}; "
                f"returned {', '.join(step.returned) or '-'}; "
                f"new {', '.join(step.added) or '-'} ({step.seconds:.1f}s)"
            )

        if not as_json:
            console.print(
                f"churn: {leave} leave and {join} join every {period:g}s, seed {run_seed}; "
                "Ctrl-C stops"
            )
        try:
            runner.run(periods=periods, duration=duration, on_step=show)
        except KeyboardInterrupt:
            console.print(f"churn stopped after {len(runner.steps)} periods")
