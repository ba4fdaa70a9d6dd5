"""`peerlab bench cli`: how long the CLI takes to answer, against a bare interpreter start.

Each round runs, one after the other, `python -c pass` (the floor every command pays),
`peerlab --help`, `peerlab status` and `peerlab net heal` on a small network this benchmark
brings up itself (and takes down at the end); the figures are the medians over the rounds,
in wall-clock milliseconds, so the machine's noise hits all four alike; `*_cpu_ms` are the
CPU time (user + system) of the same runs, which a loaded machine inflates far less than
wall time. `net_heal_call_ms` is the same call made from this process (one HTTP request on
the supervisor's socket): what the supervisor itself takes, without starting a Python.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from peerlab import supervisor

PEERS = 2


def _entry() -> list[str]:
    """The `peerlab` script beside this interpreter (what users run), else `-m peerlab`."""
    script = Path(sys.executable).with_name("peerlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "peerlab"]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run of `command`."""
    cpu = _cpu_of_children()
    began = time.perf_counter()
    subprocess.run(
        command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60
    )
    return (time.perf_counter() - began) * 1000, (_cpu_of_children() - cpu) * 1000


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def run(runs: int = 10, seed: int = 1) -> dict[str, Any]:
    """Measure; every key is described in the module docstring."""
    name = f"bench-cli-{os.getpid()}"
    entry = _entry()
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "help": [*entry, "--help"],
        "status": [*entry, "--env", name, "status"],
        "net_heal": [*entry, "--env", name, "net", "heal"],
    }
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {f"{key}_ms": [] for key in [*commands, "net_heal_call"]}
    times.update({f"{key}_cpu_ms": [] for key in commands})
    try:
        supervisor.launch(name, "syncpeer", PEERS, seed, True, False, 120.0)
        remote = supervisor.remote(name)
        for _ in range(runs):
            for key, command in commands.items():
                wall, cpu = _timed(command)
                times[f"{key}_ms"].append(wall)
                times[f"{key}_cpu_ms"].append(cpu)
            began = time.perf_counter()
            remote.call("net.heal")
            times["net_heal_call_ms"].append((time.perf_counter() - began) * 1000)
    finally:
        supervisor.shutdown(name)
        shutil.rmtree(supervisor.env_dir(name), ignore_errors=True)
    return {
        **{key: _median(values) for key, values in times.items()},
        "runs": runs,
        "peers": PEERS,
        "entry": " ".join(Path(word).name for word in entry),
        "load_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("cli")
    def cli(
        runs: int = typer.Option(10, "--runs", min=1, help="Rounds; each figure is a median."),
        seed: int = typer.Option(1, "--seed"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Milliseconds to answer: `--help`, `status`, `net heal`, against a bare Python."""
        result = run(runs, seed)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
