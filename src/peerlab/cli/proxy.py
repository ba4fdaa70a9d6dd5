"""`peerlab proxy serve`: a Toxiproxy-compatible proxy server in the foreground."""

from __future__ import annotations

import asyncio

import typer

from peerlab.aio import new_event_loop
from peerlab.cli.common import console
from peerlab.fabric import api
from peerlab.seed import new_seed

proxy_app = typer.Typer(
    help="A Toxiproxy-compatible proxy server (same HTTP API).", no_args_is_help=True
)


async def _serve(host: str, port: int, seed: int) -> None:
    runner, url = await api.start(host, port, seed)
    console.print(
        f"Toxiproxy-compatible API on [bold]{url}[/] (seed {seed}); Ctrl-C stops it",
        highlight=False,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@proxy_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address of the HTTP API."),
    port: int = typer.Option(8474, "--port", help="Port of the HTTP API (Toxiproxy's)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of every random choice (default: a new one)."
    ),
) -> None:
    """Serve Toxiproxy's HTTP API until Ctrl-C; its proxies are peerlab's."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            runner.run(_serve(host, port, new_seed() if seed is None else seed))
        except KeyboardInterrupt:
            console.print("stopped")


def register(app: typer.Typer) -> None:
    app.add_typer(proxy_app, name="proxy")
