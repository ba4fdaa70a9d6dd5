"""`peerlab bench fidelity`: do partitions reach every link they name, under load?

Brings up a cluster (etcd: 3 members, dialing from 127.0.0.1, so told by socket owner;
syncpeer: 5 peers that sync files and talk DHT, told by address; on `--backend netns` or
`docker` every node has an address of its own and is told by it), keeps a workload going,
starts K busy processes, then applies and heals N partitions of varied shapes (split,
isolate one, one-way, bridge). The fault-fidelity checker then reads the run's history:
bytes forwarded on a cut link while it was cut, and connections refused because their
source could not be told. Attribution is timed (from a connection's or flow's arrival to
the decision) twice in the same run, side by side: before the load starts (`*_idle_*`)
and under it, over every attribution (`attribution_*`: by address, a dictionary lookup,
or by socket owner) and over those that needed an owner lookup (`owner_lookup_*`: etcd's
connections, and HTTP probes the harness sends through the fabric).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import typer

from peerlab import backends
from peerlab.bench.load import busy
from peerlab.checkers.fidelity import fault_fidelity
from peerlab.env import Environment
from peerlab.errors import PeerlabError, UsageError
from peerlab.fabric import Fabric, Partition, bridge, one_way, split
from peerlab.fabric.attribution import percentile
from peerlab.seed import derive_rng
from peerlab.systems.etcd import EtcdAdapter
from peerlab.systems.syncpeer import SyncpeerAdapter

SYSTEMS = ("etcd", "syncpeer")
HOLD = 1.0  # seconds each partition lasts
SETTLE = 0.5  # seconds between a heal and the next cut
PROBES_IDLE = 40
PROBES_PER_CUT = 3


def _start(env: Environment, system: str) -> tuple[list[str], str, Callable[[int], None]]:
    """The cluster, the port probes go to, and one step of its workload."""
    if system == "etcd":
        names = [node.name for node in env.start("etcd", 3)]
        etcd = EtcdAdapter.of(env, "etcd")

        def write(step: int) -> None:
            etcd.put(names[step % len(names)], f"bench-{step % 16}", str(step))

        return names, "client", write
    env.start("syncpeer", 1, role="bootstrap")
    names = ["A"] + [node.name for node in env.start("syncpeer", 4)]
    syncpeer = SyncpeerAdapter.of(env, "syncpeer")
    for a, b in zip(names, names[1:] + names[:1], strict=True):
        syncpeer.befriend(a, b)

    def publish(step: int) -> None:
        name = names[step % len(names)]
        syncpeer.client(env.node(name)).publish(f"bench-{step % 8}.txt", os.urandom(2048))

    return names, "http", publish


def _shapes(names: list[str], cuts: int, seed: int) -> list[Partition]:
    rng = derive_rng(seed, "bench-fidelity")
    shapes = []
    for number in range(cuts):
        order = list(names)
        rng.shuffle(order)
        kind = number % 4
        if kind == 0:
            half = rng.randrange(1, len(order))
            shapes.append(split(order[:half], order[half:]))
        elif kind == 1:
            shapes.append(split(order[:1], order[1:]))
        elif kind == 2:
            shapes.append(one_way(order[:1], order[1:]))
        else:
            middle = len(order) // 2
            shapes.append(bridge(order[:middle], order[middle], order[middle + 1 :]))
    return shapes


class Workload:
    """One operation after another on a thread; failures (a cut-off member) are expected."""

    def __init__(self, step: Callable[[int], None]) -> None:
        self.done = 0
        self._step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-workload", daemon=True)

    def _run(self) -> None:
        step = 0
        while not self._stop.is_set():
            with contextlib.suppress(PeerlabError, OSError):
                self._step(step)
                self.done += 1
            step += 1
            self._stop.wait(0.1)

    def __enter__(self) -> Workload:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _probe(env: Environment, names: list[str], port: str, count: int) -> None:
    """HTTP requests from the harness through the fabric: each is an owner lookup."""
    for number in range(count):
        url = env.node(names[number % len(names)]).url(port, "/health")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()


def _timings(env: Environment, clear: bool) -> list[tuple[str, float]]:
    """(how, ms) of the attributions since the last clear."""

    plane = env.net.plane
    assert isinstance(plane, Fabric)  # the bench starts its network with the fabric on

    async def take() -> list[tuple[str, float]]:
        attributor = plane.links.attributor
        values: list[tuple[str, float]] = [
            (how, seconds * 1000) for how, seconds in attributor.timings
        ]
        if clear:
            attributor.timings.clear()
        return values

    return list(env.run(take(), 10))


def _percentiles(timings: list[tuple[str, float]], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lookups = [ms for how, ms in timings if how != "address"]
    for name, values in (
        (f"attribution{prefix}", [ms for _, ms in timings]),
        (f"owner_lookup{prefix}", lookups),
    ):
        out[f"{name}_p50_ms"] = round(statistics.median(values), 3) if values else None
        out[f"{name}_p99_ms"] = round(percentile(values, 0.99), 3) if values else None
    return out


def run(
    system: str, backend: str = "local", cuts: int = 20, load: int = 4, seed: int = 1
) -> dict[str, Any]:
    if system not in SYSTEMS:
        raise UsageError(
            f"--system is {system!r}", field="--system", hint=f"use one of: {', '.join(SYSTEMS)}"
        )
    backends.check(backend)
    if backend == "sim":
        raise UsageError(
            "--backend is 'sim': simulated links carry no real bytes for a cut to leak",
            field="--backend",
            hint="use local, netns or docker",
        )
    if cuts < 1:
        raise UsageError(f"--cuts is {cuts}", field="--cuts", hint="use 1 or more")
    if load < 0:
        raise UsageError(f"--load is {load}", field="--load", hint="use 0 or more processes")
    began = time.monotonic()
    with Environment(f"bench-fidelity-{system}", seed=seed, backend=backend) as env:
        names, port, step = _start(env, system)
        _timings(env, clear=True)
        _probe(env, names, port, PROBES_IDLE)
        idle = _timings(env, clear=True)
        shapes = _shapes(names, cuts, seed)
        with Workload(step) as workload, busy(load):
            for shape in shapes:
                env.net.apply(shape)
                _probe(env, names, port, PROBES_PER_CUT)
                time.sleep(HOLD)  # the cut's length is the experiment
                env.net.heal()
                time.sleep(SETTLE)
            loaded = _timings(env, clear=False)
        env.net.sample()
        verdict = fault_fidelity(env.history.entries())
        counts = env.net.links()["attribution"]["counts"]
        operations = workload.done
    return {
        "system": system,
        "backend": backend,
        "cuts": cuts,
        "load_processes": load,
        "links_cut": verdict.stats["cut_link_intervals"],
        "leaked_bytes": verdict.stats["leaked_bytes"],
        "unattributed": verdict.stats["unattributed"],
        "client_connections": counts.get("client", 0),
        **_percentiles(loaded, ""),
        **_percentiles(idle, "_idle"),
        "attributions": len(loaded),
        "owner_lookups": sum(how != "address" for how, _ in loaded),
        "attributed": counts,
        "operations": operations,
        "verdict": verdict.valid,
        "seconds": round(time.monotonic() - began, 1),
        "seed": seed,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("fidelity")
    def fidelity(
        system: str = typer.Option("etcd", "--system", "-s", help="etcd or syncpeer."),
        backend: str = typer.Option(
            "local", "--backend", help="Where nodes run: local, netns or docker."
        ),
        cuts: int = typer.Option(20, "--cuts", help="How many partitions to apply and heal."),
        load: int = typer.Option(4, "--load", help="Busy processes loading the machine."),
        seed: int = typer.Option(1, "--seed"),
        as_json: bool = typer.Option(False, "--json", help="One line of JSON."),
    ) -> None:
        """Apply and heal N partitions of varied shapes under load; bytes that crossed a cut
        link, unattributed connections, and owner lookup times (idle and loaded)."""
        result = run(system, backend, cuts, load, seed)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
