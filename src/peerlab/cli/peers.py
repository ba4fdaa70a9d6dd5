"""`peerlab peer ...`: list, add, inspect and control the nodes of a running network."""

from __future__ import annotations

import typer

from peerlab.cli.common import console, print_json, remote_env
from peerlab.cli.lifecycle import nodes_table

peer_app = typer.Typer(help="List, add, inspect and control peers.", no_args_is_help=True)


@peer_app.command("list")
def peer_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every peer with its state, address and resources."""
    nodes = remote_env(ctx).call("env.peers")
    if as_json:
        print_json(nodes)
    else:
        console.print(nodes_table(nodes))


@peer_app.command("add")
def peer_add(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Name of the new peer (default: next letter)."),
    role: str | None = typer.Option(None, "--role"),
) -> None:
    """Start one more peer and wait until it is ready."""
    node = remote_env(ctx).call("env.add_peer", name=name, role=role)
    console.print(f"peer [bold]{node['name']}[/] is {node['state']} at {node['address']}")


@peer_app.command("inspect")
def peer_inspect(ctx: typer.Context, name: str) -> None:
    """Everything about one peer: process, addresses, and the system's own state."""
    print_json(remote_env(ctx).call("env.inspect", name=name))


@peer_app.command("logs")
def peer_logs(
    ctx: typer.Context,
    name: str,
    lines: int = typer.Option(50, "--lines", "-n"),
    stderr: bool = typer.Option(False, "--stderr", help="Show stderr instead of stdout."),
) -> None:
    """The last lines of a peer's output."""
    for line in remote_env(ctx).call(
        "env.logs", name=name, lines=lines, stream="stderr" if stderr else "stdout"
    ):
        typer.echo(line)


def _control(verb: str, help_text: str) -> None:
    def command(ctx: typer.Context, name: str) -> None:
        node = remote_env(ctx).call(f"env.{verb}", name=name)
        console.print(
            f"peer [bold]{node['name']}[/] is {node['state']}"
            + (f" (pid {node['pid']})" if node.get("pid") else "")
        )

    command.__doc__ = help_text
    peer_app.command(verb)(command)


_control("kill", "SIGKILL a peer (its data is kept).")
_control("stop", "Stop a peer gracefully (SIGTERM, then SIGKILL).")
_control("restart", "Restart a peer with its data kept; waits until it is ready.")
_control("pause", "Freeze a peer (SIGSTOP).")
_control("resume", "Unfreeze a paused peer (SIGCONT).")


def register(app: typer.Typer) -> None:
    app.add_typer(peer_app, name="peer")
