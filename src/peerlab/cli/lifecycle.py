"""`peerlab up`, `down`, `status`: bring a network up in the background and take it down."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from peerlab import supervisor
from peerlab.cli.common import console, env_name, print_json, remote_env
from peerlab.errors import UsageError
from peerlab.systems import find_system


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("peer", "system", "state", "pid", "address", "ports", "rss MB", "uptime s"):
        table.add_column(column)
    colours = {"running": "green", "paused": "yellow", "starting": "cyan"}
    for node in nodes:
        state = node["state"]
        table.add_row(
            node["name"],
            node["system"],
            f"[{colours.get(state, 'red')}]{state}[/]",
            str(node.get("pid") or "-"),
            node["address"],
            ",".join(f"{k}={v}" for k, v in node["ports"].items()),
            str(node.get("rss_mb", "-")),
            str(node.get("uptime_s", "-")),
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        ctx: typer.Context,
        peers: int = typer.Option(3, "--peers", "-n", help="How many nodes to start."),
        system: str = typer.Option(
            "syncpeer", "--system", "-s", help="A built-in system or a manifest .toml path."
        ),
        seed: int | None = typer.Option(None, "--seed", help="Seed for every random choice."),
        no_fabric: bool = typer.Option(
            False, "--no-fabric", help="No proxies between nodes (no network faults)."
        ),
        bootstrap: bool = typer.Option(
            False, "--bootstrap", help="Start a bootstrap-role node first."
        ),
        timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for readiness."),
    ) -> None:
        """Start a network in the background; returns once every node is ready."""
        name = env_name(ctx)
        if peers < 1:
            raise UsageError(f"--peers is {peers}", field="--peers", hint="use 1 or more")
        spec = find_system(system)
        if bootstrap and "bootstrap" not in spec.roles:
            raise UsageError(
                f"system {spec.name!r} has no bootstrap role",
                field="--bootstrap",
                hint="drop --bootstrap or add [roles.bootstrap] to its manifest",
            )
        if supervisor.is_running(name):
            raise UsageError(
                f"environment {name!r} is already up",
                field="--env",
                hint=f"`peerlab --env {name} down` first, or use --env OTHER",
            )
        with console.status(f"starting {peers} {spec.name} peers..."):
            state = supervisor.launch(name, system, peers, seed, not no_fabric, bootstrap, timeout)
        status = state["status"]
        console.print(nodes_table(status["nodes"]))
        console.print(
            f"environment [bold]{name}[/] is up: {len(status['nodes'])} peers, "
            f"seed {status['seed']}. `peerlab down` stops it."
        )

    @app.command()
    def down(
        ctx: typer.Context,
        all_envs: bool = typer.Option(False, "--all", help="Stop every environment."),
    ) -> None:
        """Stop everything the environment started."""
        names = supervisor.list_envs() if all_envs else [env_name(ctx)]
        stopped = [name for name in names if supervisor.shutdown(name)]
        if not all_envs and not stopped:
            console.print(f"environment {names[0]!r} was not running")
            return
        for name in stopped:
            console.print(f"environment [bold]{name}[/] is down")

    @app.command()
    def status(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """The nodes of the running environment and their state."""
        result = remote_env(ctx).call("status")
        if as_json:
            print_json(result)
            return
        console.print(
            f"environment [bold]{result['name']}[/]  seed {result['seed']}  "
            f"up {result['uptime_s']}s  systems {', '.join(result['systems'])}"
        )
        console.print(nodes_table(result["nodes"]))
