"""peerlab's command line: an interactive face over the same library the tests use."""

from __future__ import annotations

import importlib
import sys

import typer

from peerlab.cli.common import print_error
from peerlab.errors import PeerlabError, UsageError
from peerlab.names import check_name
from peerlab.systems.plugins import plugins

app = typer.Typer(
    name="peerlab",
    help="Bring up a network of peers, break it, drive a workload, check the result.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

bench_app = typer.Typer(
    help="Benchmarks that print JSON (compare side by side in one run).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@app.callback()
def _main(
    ctx: typer.Context,
    env: str = typer.Option(
        "default", "--env", "-e", help="Which environment to act on.", envvar="PEERLAB_ENV"
    ),
) -> None:
    ctx.obj = {"env": check_name(env, "environment", "--env", "default")}


# Each module adds its commands: `register(app)`; bench modules: `register(bench_app)`.
COMMAND_MODULES = [
    "peerlab.cli.lifecycle",
    "peerlab.cli.peers",
    "peerlab.cli.demo",
    "peerlab.cli.observe",
    "peerlab.cli.report",
    "peerlab.cli.scenario",
    "peerlab.cli.snapshot",
    "peerlab.cli.shell",
    "peerlab.cli.ci",
    "peerlab.cli.check",
    "peerlab.cli.churn",
    "peerlab.cli.net",
    "peerlab.cli.proxy",
    "peerlab.cli.nemesis",
    "peerlab.cli.sim",
    "peerlab.cli.api",
    "peerlab.cli.envs",
]
BENCH_MODULES = [
    "peerlab.bench.spawn",
    "peerlab.bench.check",
    "peerlab.bench.failover",
    "peerlab.bench.dht",
    "peerlab.bench.proxy",
    "peerlab.bench.sim",
    "peerlab.bench.fidelity",
]

for module_name in COMMAND_MODULES:
    importlib.import_module(module_name).register(app)
for plugin in plugins():  # systems' own verbs (syncpeer: friend, file, dht)
    plugin.register_cli(app)
for module_name in BENCH_MODULES:
    importlib.import_module(module_name).register(bench_app)


def main() -> None:
    """Entry point: usage errors exit 2, other failures 1, each with a one-line message."""
    try:
        app()  # standalone: click's own usage errors print and exit 2
    except UsageError as exc:
        print_error(exc)
        sys.exit(2)
    except PeerlabError as exc:
        print_error(exc)
        sys.exit(1)
