"""peerlab's command line: an interactive face over the same library the tests use.

Commands are imported when they run (see `peerlab.cli.lazy`): importing this module costs
typer and the two tables below, so `peerlab --help` and a control command answer at once.
"""

from __future__ import annotations

import sys

import typer

from peerlab.cli.lazy import Lazy, lazy_group
from peerlab.errors import PeerlabError, UsageError

# Where commands are registered. Adding a command is one entry here plus its module, whose
# `register(app)` adds it to a typer app; the entry holds the module and the one line that
# `peerlab --help` shows, which must be the command's own (a test compares them). A module
# that adds several commands has one entry per command. System plugins declare their verbs
# in `SystemPlugin.commands` instead (syncpeer: friend, file, dht).
COMMANDS = {
    "up": Lazy(
        "peerlab.cli.lifecycle",
        "Start a network in the background; returns once every node is ready.",
    ),
    "down": Lazy(
        "peerlab.cli.lifecycle",
        "Stop everything the environment started (after saving its results folder).",
    ),
    "status": Lazy(
        "peerlab.cli.lifecycle", "The nodes of the running environment and their state."
    ),
    "demo": Lazy(
        "peerlab.cli.demo",
        "5 syncpeer peers, friends, a file encrypted for two of them, a summary.",
    ),
    "logs": Lazy(
        "peerlab.cli.observe",
        "One time-ordered timeline of every node's logs and peerlab's own events.",
    ),
    "report": Lazy(
        "peerlab.cli.report",
        "A run's summary: outcome, seed, verdicts, faults and the replay command. Exits 1 when "
        "the run failed, so scripts can tell.",
    ),
    "results": Lazy(
        "peerlab.cli.report",
        "Save the running network's results folder: result.json, logs, timeline, JUnit.",
    ),
    "trend": Lazy(
        "peerlab.cli.report",
        "Keep each run's figures and flag regressions (exit code 1 when one is flagged).",
    ),
    "shell": Lazy(
        "peerlab.cli.shell",
        "An interactive shell over the running network: commands, completion, history.",
    ),
    "init-ci": Lazy(
        "peerlab.cli.ci",
        "Write a CI workflow: categories on push, fault and stress suites nightly, a full "
        "regression weekly, results uploaded, failures posted to a webhook.",
    ),
    "churn": Lazy(
        "peerlab.cli.churn", "Peers leave and join every period, chosen by a seeded random draw."
    ),
    "peer": Lazy("peerlab.cli.peers", "List, add, inspect and control peers."),
    "scenario": Lazy("peerlab.cli.scenario", "Named scenarios that run against the live network."),
    "snapshot": Lazy(
        "peerlab.cli.snapshot",
        "Save the network's state (data dirs, keys, friends, faults) and bring it back.",
    ),
    "check": Lazy("peerlab.cli.check", "Check a recorded history."),
    "history": Lazy("peerlab.cli.check", "Convert recorded histories."),
    "net": Lazy("peerlab.cli.net", "Partitions, latency, bandwidth and loss between the peers."),
    "proxy": Lazy("peerlab.cli.proxy", "A Toxiproxy-compatible proxy server (same HTTP API)."),
    "nemesis": Lazy("peerlab.cli.nemesis", "Seeded fault schedules (faults over time)."),
    "flaky": Lazy(
        "peerlab.cli.automation",
        "Flake rates per test over the last runs (recorded by pytest with peerlab).",
    ),
    "impacted": Lazy(
        "peerlab.cli.automation",
        "The tests the change since REV can affect (everything when the map cannot tell).",
    ),
    "impact-map": Lazy(
        "peerlab.cli.automation",
        "Build the change-impact map from a coverage run with per-test contexts.",
    ),
    "coverage-gate": Lazy(
        "peerlab.cli.automation",
        "Fail (exit 1) when the project or a gated module is under its coverage threshold.",
    ),
    "api": Lazy("peerlab.cli.api", "The HTTP/JSON control API (docs/api.md)."),
    "env": Lazy("peerlab.cli.envs", "The environments kept under $PEERLAB_HOME."),
    "image": Lazy("peerlab.cli.image", "Container images for the docker backend, built here."),
    "sim": Lazy(
        "peerlab.cli.sim", "The deterministic simulator: runs, many seeds, shrinking (docs/sim.md)."
    ),
}
# `peerlab bench NAME`: the same, for benchmarks (modules in peerlab.bench).
BENCHMARKS = {
    "spawn": Lazy(
        "peerlab.bench.spawn",
        "Start N syncpeer nodes by fork-server and by plain exec (or on `--backend` beside the "
        "local backend); time and memory of each.",
    ),
    "check": Lazy(
        "peerlab.bench.check",
        "Time `linearizable` on a valid register history and on one with a stale read.",
    ),
    "failover": Lazy(
        "peerlab.bench.failover",
        "Kill the leader (etcd) or master (Redis) N times; median and max seconds until a "
        "successor acknowledged a write.",
    ),
    "dht": Lazy(
        "peerlab.bench.dht",
        "Join time, lookup latency (mean, p99) and memory per peer of syncpeer's DHT.",
    ),
    "cli": Lazy(
        "peerlab.bench.cli",
        "Milliseconds to answer: `--help`, `status`, `net heal`, against a bare Python.",
    ),
    "sync": Lazy(
        "peerlab.bench.sync",
        "Handshake, message latency, throughput and memory of two syncpeer friends.",
    ),
    "fidelity": Lazy(
        "peerlab.bench.fidelity",
        "Apply and heal N partitions of varied shapes under load; bytes that crossed a cut "
        "link, unattributed connections, and owner lookup times (idle and loaded).",
    ),
    "sim": Lazy(
        "peerlab.bench.sim",
        "The simulator on the swarm workload, twice with one seed: speed, memory, replay.",
    ),
    "proxy": Lazy(
        "peerlab.bench.proxy",
        "Proxy vs direct loopback and other relays: throughput, added round trip, toxics (or, "
        "with --backend netns, tproxy interception vs the direct path).",
    ),
}

app = typer.Typer(
    name="peerlab",
    help="Bring up a network of peers, break it, drive a workload, check the result.",
    cls=lazy_group(COMMANDS, with_plugins=True),
    # Help and usage errors in click's plain layout, as wide as the terminal (up to 120
    # columns): typer's rich layout imports rich's markdown, syntax and traceback modules,
    # which doubled `peerlab --help`'s time.
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

bench_app = typer.Typer(
    help="Benchmarks that print JSON (compare side by side in one run).",
    cls=lazy_group(BENCHMARKS),
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


@app.callback()
def _main(
    ctx: typer.Context,
    env: str = typer.Option(
        "default", "--env", "-e", help="Which environment to act on.", envvar="PEERLAB_ENV"
    ),
) -> None:
    from peerlab.names import check_name

    ctx.obj = {"env": check_name(env, "environment", "--env", "default")}


def main() -> None:
    """Entry point: usage errors exit 2, other failures 1, each with a one-line message."""
    try:
        app()  # standalone: click's own usage errors print and exit 2
    except PeerlabError as exc:
        from peerlab.cli.common import print_error

        print_error(exc)
        sys.exit(2 if isinstance(exc, UsageError) else 1)
