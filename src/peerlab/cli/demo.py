"""`peerlab demo`: the whole stack in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from peerlab.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        results: Path = typer.Option(
            Path("peerlab-results/demo"), "--results", help="Where result.json is written."
        ),
        seed: int | None = typer.Option(None, "--seed"),
    ) -> None:
        """5 syncpeer peers, friends, a file encrypted for two of them, a summary."""
        from peerlab.demo import run_demo

        result = run_demo(results, seed, say=lambda line: console.print(line, highlight=False))
        console.print(f"[bold green]demo passed[/] (seed {result['seed']})")
