"""`peerlab up`, `down`, `status`: bring a network up in the background and take it down."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from peerlab import backends, supervisor
from peerlab.cli.common import console, env_name, print_error, print_json, remote_env
from peerlab.errors import PeerlabError, UsageError
from peerlab.home import results_root
from peerlab.systems import find_system
from peerlab.versions import parse_versions


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    # Memory, CPU and process count are of the node's whole process tree (a monitor and
    # its workers), as the backend measures it.
    columns = ("peer", "system", "state", "pid", "address", "ports", "rss MB", "cpu s", "procs")
    for column in (*columns, "uptime s"):
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
            str(node.get("cpu_seconds", "-")),
            str(node.get("processes", "-")),
            str(node.get("uptime_s", "-")),
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        ctx: typer.Context,
        peers: int | None = typer.Option(
            None,
            "--peers",
            "-n",
            help="How many nodes to start (default: 3, or the system's layout of roles).",
        ),
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
        backend: str = typer.Option(
            backends.DEFAULT,
            "--backend",
            "-b",
            envvar="PEERLAB_BACKEND",
            help=f"Where nodes run: {', '.join(backends.names())} (docs/backends.md).",
        ),
        timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for readiness."),
        version: list[str] = typer.Option(
            [],
            "--version",
            help="Nodes of one version of the system, e.g. A,B=1.0 (repeat; the manifest's "
            "[versions] say what each runs).",
        ),
        api_port: int | None = typer.Option(
            None,
            "--api-port",
            help="Also serve the control API on 127.0.0.1:PORT (0: any), with a bearer token "
            "(docs/api.md).",
        ),
    ) -> None:
        """Start a network in the background; returns once every node is ready."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from peerlab.node import node_name

        name = env_name(ctx)
        backends.check(backend)
        if peers is not None and peers < 1:
            raise UsageError(f"--peers is {peers}", field="--peers", hint="use 1 or more")
        spec = find_system(system)
        versions = parse_versions(version)
        for node, wanted in versions.items():
            spec.check_version(wanted, "--version")
            count = peers or (0 if spec.layout else 3)
            if count and node not in {node_name(i) for i in range(count)}:
                raise UsageError(
                    f"--version names node {node!r}, which `up` does not start",
                    field="--version",
                    hint=f"name nodes among {node_name(0)}..{node_name(count - 1)}",
                )
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
        layout = ", ".join(f"{role}: {count}" for role, count in spec.layout)
        what = (
            f"{peers or 3} {spec.name} peers" if peers or not layout else f"{spec.name} ({layout})"
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"starting {what}", total=peers)

            def show(ready: int, created: int) -> None:
                progress.update(task, completed=ready, total=max(created, peers or 0) or None)

            try:
                state = supervisor.launch(
                    name,
                    system,
                    peers,
                    seed,
                    not no_fabric,
                    bootstrap,
                    timeout,
                    show,
                    backend,
                    version,
                    api_port,
                )
            except KeyboardInterrupt:
                progress.stop()
                print_error(f"interrupted: environment {name!r} was stopped, nothing is running")
                raise typer.Exit(130) from None
        status = state["status"]
        console.print(nodes_table(status["nodes"]))
        console.print(
            f"environment [bold]{name}[/] is up: {len(status['nodes'])} peers, "
            f"seed {status['seed']}. `peerlab down` stops it."
        )
        api = state.get("api", {})
        if "url" in api:
            console.print(f"API: {api['url']} (token in {api['token_file']})", highlight=False)

    @app.command()
    def down(
        ctx: typer.Context,
        all_envs: bool = typer.Option(False, "--all", help="Stop every environment."),
        results: bool = typer.Option(
            True,
            "--results/--no-results",
            help="Save the run to $PEERLAB_HOME/results/<env>-<time> first.",
        ),
    ) -> None:
        """Stop everything the environment started (after saving its results folder)."""
        names = supervisor.list_envs() if all_envs else [env_name(ctx)]
        stopped = []
        for name in names:
            if results and supervisor.is_running(name):
                stamp = time.strftime("%Y%m%d-%H%M%S")
                target = results_root() / f"{name}-{stamp}"
                try:
                    supervisor.remote(name).call("results.save", dest=str(target))
                    console.print(
                        f"results of {escape(name)}: {escape(str(target))} "
                        f"(`peerlab report {escape(str(target))}`)",
                        highlight=False,
                    )
                except PeerlabError as exc:
                    console.print(f"results of {name} not saved: {escape(str(exc))}")
            if supervisor.shutdown(name):
                stopped.append(name)
        if not all_envs and not stopped:
            console.print(f"environment {names[0]!r} was not running")
            return
        for name in stopped:
            console.print(f"environment [bold]{name}[/] is down")

    @app.command()
    def status(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        watch: bool = typer.Option(
            False, "--watch", "-w", help="A live dashboard: nodes, faulty links, recent events."
        ),
        interval: float = typer.Option(1.0, "--interval", help="Seconds between refreshes."),
    ) -> None:
        """The nodes of the running environment and their state."""
        if watch:
            from peerlab.observe.dashboard import watch as live_dashboard

            remote = remote_env(ctx)
            live_dashboard(
                lambda: remote.call("env.status"),
                lambda cursor: remote.call(
                    "observe.timeline", cursor=cursor, tail=None if cursor else 12
                ),
                interval,
            )
            return
        result = remote_env(ctx).call("env.status")
        if as_json:
            print_json(result)
            return
        console.print(
            f"environment [bold]{result['name']}[/]  seed {result['seed']}  "
            f"backend {result['backend']}  up {result['uptime_s']}s  "
            f"systems {', '.join(result['systems'])}"
        )
        console.print(nodes_table(result["nodes"]))
