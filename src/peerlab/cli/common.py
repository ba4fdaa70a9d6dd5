"""What every CLI command shares: the selected environment, output, and error exits."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from peerlab.errors import PeerlabError, UsageError
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


def print_error(exc: PeerlabError | str) -> None:
    """One line on stderr: the message and its fix (a usage error) or hint.

    Escaped: messages quote manifest tables such as [ports] and whatever the user typed,
    which rich would take for markup. Soft-wrapped: one line, however narrow the terminal.
    """
    if isinstance(exc, str):
        exc = PeerlabError(exc)
    line = f"[bold red]error:[/] {escape(exc.message)}"
    if exc.hint:
        label = "fix" if isinstance(exc, UsageError) else "hint"
        line += f" ({label}: {escape(exc.hint)})"
    err_console.print(line, highlight=False, soft_wrap=True)
