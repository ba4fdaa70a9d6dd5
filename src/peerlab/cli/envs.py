"""`peerlab env list` and `peerlab env prune`: the environments kept under $PEERLAB_HOME.

Every `peerlab up --env NAME` keeps a folder (`envs/NAME/`: state, logs, the last network's
work dir) after `down`, so a later `up` of the same name and `peerlab logs` find them.
`list` shows them with their state and size; `prune` removes those not running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from peerlab.cli.common import console, print_json

env_app = typer.Typer(help="The environments kept under $PEERLAB_HOME.", no_args_is_help=True)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _describe(name: str) -> dict[str, Any]:
    from peerlab import supervisor

    folder = supervisor.env_dir(name)
    state = supervisor.read_state(name) or {}
    running = supervisor.is_running(name)
    return {
        "name": name,
        "state": "running" if running else state.get("state", "unknown"),
        "nodes": len((state.get("status") or {}).get("nodes", [])),
        "size_mb": round(_size(folder) / 2**20, 1),
        "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(folder.stat().st_mtime)),
        "path": str(folder),
    }


@env_app.command("list")
def env_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every environment folder: its state, nodes, size and when it was last used."""
    from peerlab import supervisor

    envs = [_describe(name) for name in supervisor.list_envs()]
    if as_json:
        print_json(envs)
        return
    if not envs:
        console.print("no environments")
        return
    table = Table(box=None, header_style="bold")
    for column in ("env", "state", "nodes", "MB", "last used", "folder"):
        table.add_column(column)
    for env in envs:
        table.add_row(
            *(
                escape(str(env[k]))
                for k in ("name", "state", "nodes", "size_mb", "modified", "path")
            )
        )
    console.print(table)


@env_app.command("prune")
def env_prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go, remove nothing."),
) -> None:
    """Remove the folders of environments that are not running (running ones stay)."""
    from peerlab import supervisor
    from peerlab.names import remove_tree

    gone = [name for name in supervisor.list_envs() if not supervisor.is_running(name)]
    for name in gone:
        if not dry_run:
            supervisor.socket_path(name).unlink(missing_ok=True)
            remove_tree(supervisor.env_dir(name), supervisor.envs_root())
        console.print(f"{'would remove' if dry_run else 'removed'} {escape(name)}", highlight=False)
    if not gone:
        console.print("nothing to prune: every environment is running")


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
