"""`peerlab snapshot save | restore | list`: the whole network's state, saved and brought back."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from peerlab.cli.common import console, print_json, remote_env
from peerlab.observe.events import describe_fault
from peerlab.snapshot import list_snapshots, snapshot_dir

snapshot_app = typer.Typer(
    help="Save the network's state (data dirs, keys, friends, faults) and bring it back.",
    no_args_is_help=True,
)


@snapshot_app.command("save")
def snapshot_save(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name for the snapshot, e.g. before-split."),
    force: bool = typer.Option(False, "--force", help="Replace a snapshot of that name."),
) -> None:
    """Freeze every peer for an instant and save its data dir, state and the faults."""
    snapshot_dir(name)  # a bad name is refused before anything is paused
    with console.status(f"saving snapshot {name} (peers are paused while it is copied)..."):
        manifest = remote_env(ctx).call("snapshot.save", name=name, force=force)
    console.print(
        f"snapshot [bold]{name}[/]: {len(manifest['nodes'])} peers, "
        f"{len(manifest['faults'])} faults"
    )
    for fault in manifest["faults"]:
        console.print(f"  ⚡ {describe_fault(fault)}", highlight=False)


@snapshot_app.command("restore")
def snapshot_restore(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A snapshot from `peerlab snapshot list`."),
    force: bool = typer.Option(
        False, "--force", help="Restore even if the peers' addresses differ."
    ),
) -> None:
    """Stop the peers, put the saved data dirs and faults back, start the peers."""
    snapshot_dir(name)
    with console.status(f"restoring snapshot {name} (peers restart)..."):
        done = remote_env(ctx).call("snapshot.restore", name=name, force=force)
    taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(done["taken"]))
    console.print(
        f"restored [bold]{name}[/] (taken {taken}): started {', '.join(done['started']) or 'none'}"
    )
    if done["stopped"]:
        console.print(f"  left stopped, as they were: {', '.join(done['stopped'])}")
    if done["not_in_snapshot"]:
        console.print(f"  not in the snapshot, now stopped: {', '.join(done['not_in_snapshot'])}")
    for fault in done["faults"]:
        console.print(f"  ⚡ {describe_fault(fault)}", highlight=False)


@snapshot_app.command("list")
def snapshot_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The saved snapshots."""
    found = list_snapshots()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no snapshots yet: `peerlab snapshot save NAME`")
        return
    table = Table("name", "taken", "environment", "peers", "faults", box=None, header_style="bold")
    for item in found:
        taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["taken"] or 0))
        table.add_row(
            item["name"], taken, str(item["env"]), str(item["nodes"]), str(item["faults"])
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app, name="snapshot")
