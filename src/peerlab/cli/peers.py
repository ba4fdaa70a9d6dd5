"""`peerlab peer ...`, `friend ...`, `file ...`: act on the nodes of a running network."""

from __future__ import annotations

import base64
from pathlib import Path

import typer
from rich.table import Table

from peerlab.cli.common import console, print_json, remote_env, split_names
from peerlab.cli.lifecycle import nodes_table
from peerlab.errors import UsageError

peer_app = typer.Typer(help="List, add, inspect and control peers.", no_args_is_help=True)
friend_app = typer.Typer(help="Friendships between peers (syncpeer).", no_args_is_help=True)
file_app = typer.Typer(help="Publish and read files (syncpeer).", no_args_is_help=True)


@peer_app.command("list")
def peer_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every peer with its state, address and resources."""
    nodes = remote_env(ctx).call("peers")
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
    node = remote_env(ctx).call("add_peer", name=name, role=role)
    console.print(f"peer [bold]{node['name']}[/] is {node['state']} at {node['address']}")


@peer_app.command("inspect")
def peer_inspect(ctx: typer.Context, name: str) -> None:
    """Everything about one peer: process, addresses, and the system's own state."""
    print_json(remote_env(ctx).call("inspect", name=name))


@peer_app.command("logs")
def peer_logs(
    ctx: typer.Context,
    name: str,
    lines: int = typer.Option(50, "--lines", "-n"),
    stderr: bool = typer.Option(False, "--stderr", help="Show stderr instead of stdout."),
) -> None:
    """The last lines of a peer's output."""
    for line in remote_env(ctx).call(
        "logs", name=name, lines=lines, stream="stderr" if stderr else "stdout"
    ):
        typer.echo(line)


def _control(verb: str, help_text: str) -> None:
    def command(ctx: typer.Context, name: str) -> None:
        node = remote_env(ctx).call(verb, name=name)
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


@friend_app.command("add")
def friend_add(
    ctx: typer.Context,
    a: str,
    b: str = typer.Argument(..., help="A peer, or a fingerprint (found through the DHT)."),
    one_way: bool = typer.Option(False, "--one-way", help="Only A adds B (B does not add A)."),
    dht: bool = typer.Option(
        False, "--dht", help="Give each side only the other's fingerprint (found via the DHT)."
    ),
) -> None:
    """A and B become friends (both ways unless --one-way). B may be a fingerprint alone:
    A finds its address in the DHT and its card there."""
    remote_env(ctx).call("adapter.friend_add", a=a, b=b, mutual=not one_way, via_dht=dht)
    arrow = "->" if one_way else "<->"
    console.print(f"{a} {arrow} {b}: friends")


@friend_app.command("list")
def friend_list(ctx: typer.Context, a: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A's friends."""
    friends = remote_env(ctx).call("adapter.friend_list", a=a)
    if as_json:
        print_json(friends)
        return
    table = Table(box=None, header_style="bold")
    for column in ("peer", "fingerprint", "address"):
        table.add_column(column)
    for friend in friends:
        card = friend.get("card", friend)
        table.add_row(
            str(friend.get("peer") or "?"),
            str(card.get("fingerprint", ""))[:16],
            str(friend.get("address", "")),
        )
    console.print(table)


@file_app.command("add")
def file_add(
    ctx: typer.Context,
    a: str,
    path: Path,
    for_peers: str = typer.Option("", "--for", help="Recipients: B,C (default: public)."),
    name: str | None = typer.Option(None, "--name", help="Name to publish under."),
) -> None:
    """Publish a local file on peer A, encrypted for the peers named with --for."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file", field="PATH", hint="name an existing file")
    content = base64.b64encode(path.read_bytes()).decode()
    meta = remote_env(ctx).call(
        "adapter.file_add",
        a=a,
        name=name or path.name,
        content_b64=content,
        recipients=split_names(for_peers) or None,
    )
    audience = for_peers or "everyone (public)"
    console.print(
        f"{a} published [bold]{meta.get('name', name or path.name)}[/] "
        f"v{meta.get('version', '?')} for {audience}"
    )


@file_app.command("list")
def file_list(ctx: typer.Context, a: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The files peer A holds."""
    files = remote_env(ctx).call("adapter.file_list", a=a)
    if as_json:
        print_json(files)
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "version", "author", "size", "decryptable"):
        table.add_column(column)
    for entry in files:
        table.add_row(
            entry["name"],
            str(entry.get("version")),
            str(entry.get("author", ""))[:12],
            str(entry.get("size")),
            "yes" if entry.get("decryptable") else "no",
        )
    console.print(table)


@file_app.command("cat")
def file_cat(ctx: typer.Context, b: str, name: str) -> None:
    """Print a file's decrypted content as peer B sees it."""
    data = base64.b64decode(remote_env(ctx).call("adapter.file_cat", b=b, name=name))
    typer.echo(data.decode(errors="replace"), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(peer_app, name="peer")
    app.add_typer(friend_app, name="friend")
    app.add_typer(file_app, name="file")
