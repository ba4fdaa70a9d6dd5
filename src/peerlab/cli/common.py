"""What every CLI command shares: the selected environment, output, and error exits."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

from peerlab.supervisor import Remote, remote

console = Console()
err_console = Console(stderr=True)


def env_name(ctx: typer.Context) -> str:
    """The environment chosen with the global `--env` option."""
    obj = ctx.find_root().obj or {}
    return str(obj.get("env", "default"))


def remote_env(ctx: typer.Context) -> Remote:
    return remote(env_name(ctx))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def split_names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
