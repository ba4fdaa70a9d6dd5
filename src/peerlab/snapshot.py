"""Snapshots: a whole network's state saved to a folder and brought back.

A snapshot holds every node's data dir (for syncpeer: keys, friends, files), what the
system's adapter reports about each node (friends, files, routing tables), which nodes ran,
and the faults applied to the network:

    <snapshot>/snapshot.json         nodes, states, faults, seed, backend (addressing), systems
    <snapshot>/nodes/<name>/data/    a copy of the node's data dir
    <snapshot>/nodes/<name>/state.json   the adapter's view of the node (when it has one)

Saving freezes every running node (pause) while the data dirs are copied, so all of them
are taken at the same instant and no file is copied half-written by its own node. Restoring
stops the nodes, puts the saved data dirs back, applies the saved faults and starts the
nodes that were running.

The CLI keeps snapshots under `$PEERLAB_HOME/snapshots/<name>`; tests pass a folder.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError, UsageError
from peerlab.home import peerlab_home
from peerlab.names import check_name
from peerlab.node import NodeRecord, NodeState

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

MANIFEST = "snapshot.json"
FORMAT = 2

Progress = Callable[[str], None]


def snapshot_root() -> Path:
    return peerlab_home() / "snapshots"


def snapshot_dir(name: str, root: Path | None = None) -> Path:
    return (root or snapshot_root()) / check_name(name, "snapshot", "NAME", "before-split")


def _quiet(_: str) -> None:
    return None


def save(
    env: EnvironmentAPI,
    target: Path,
    *,
    force: bool = False,
    copy_data: bool = True,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Save the network's state to `target`; returns the snapshot's manifest."""
    if target.exists():
        if not force:
            raise UsageError(
                f"snapshot {target.name!r} already exists ({target})",
                field="NAME",
                hint="choose another name or pass --force",
            )
        shutil.rmtree(target)
    target.mkdir(parents=True)
    states = _system_states(env, progress)
    faults = env.net.export()
    taken = time.time()
    frozen = env.freeze(list(env.nodes))
    try:
        if copy_data:
            for node in env.nodes.values():
                progress(f"copying the data dir of {node.name}")
                env.export_data(node, target / "nodes" / node.name / "data")
    finally:
        with contextlib.suppress(Exception):
            env.thaw(frozen)
    for name, state in states.items():
        folder = target / "nodes" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state.json").write_text(json.dumps(state, indent=2, default=str))
    manifest = {
        "format": FORMAT,
        "name": target.name,
        "taken": taken,
        "env": env.name,
        "seed": env.seed,
        "backend": env.backend_info(),
        "systems": {name: str(spec.source) for name, spec in env.systems.items()},
        "nodes": [n.record().to_json() for n in env.nodes.values()],
        "faults": faults,
        "data": copy_data,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    env.history.event(
        "snapshot_saved", None, name=target.name, nodes=len(env.nodes), faults=len(faults)
    )
    return manifest


def _system_states(env: EnvironmentAPI, progress: Progress) -> dict[str, Any]:
    """What each running node's adapter tells about it (friends, files, routing tables)."""
    states: dict[str, Any] = {}
    for node in env.nodes.values():
        adapter = env.adapters.get(node.system.name)
        if adapter is None or node.state != "running":
            continue
        progress(f"asking {node.name} for its state")
        try:
            state = adapter.inspect(node)
        except PeerlabError as exc:
            state = {"error": exc.message}
        if state is not None:
            states[node.name] = state
    return states


def load(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise UsageError(
            f"there is no snapshot {source.name!r} ({source})",
            field="NAME",
            hint="`peerlab snapshot list` shows the saved ones",
        ) from None
    except json.JSONDecodeError as exc:
        raise PeerlabError(f"snapshot {source.name!r} is damaged: {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise UsageError(
            f"snapshot {source.name!r} has format {manifest.get('format')!r}",
            field="NAME",
            hint=f"this peerlab reads format {FORMAT}; save it again",
        )
    if not manifest.get("data"):
        raise UsageError(
            f"snapshot {source.name!r} holds no data dirs (a failure record)",
            field="NAME",
            hint="only snapshots taken with their data restore",
        )
    return manifest


def restore(
    env: EnvironmentAPI, source: Path, *, force: bool = False, progress: Progress = _quiet
) -> dict[str, Any]:
    """Bring the network back to the snapshot in `source`; returns what was done."""
    manifest = load(source)
    for name, system in manifest["systems"].items():
        if name not in env.systems:
            env.system(system)
    here = env.backend_info()
    if manifest["backend"] != here and not force:
        raise UsageError(
            f"snapshot {source.name!r} was taken on {manifest['backend']} "
            f"and this network runs on {here}",
            field="NAME",
            hint="nodes store each other's addresses in their data; restore it "
            "into the network that saved it, or pass --force to restore anyway",
        )
    saved = {record.name: record for record in map(NodeRecord.from_json, manifest["nodes"])}
    for name, raw in saved.items():
        node = env.nodes.get(name)
        if node is not None and node.address != raw.address and not force:
            raise UsageError(
                f"peer {name} has address {node.address} here but "
                f"{raw.address} in snapshot {source.name!r}",
                field="NAME",
                hint="pass --force to restore anyway",
            )
    for node in env.nodes.values():
        if node.alive:
            progress(f"stopping {node.name}")
            env.stop(node.name)
    for name, raw in saved.items():
        if name not in env.nodes:
            progress(f"creating {name}")
            env.start(raw.system, [name], role=raw.role, wait=False)
            env.stop(name)
    env.net.clear()
    for name in saved:
        progress(f"restoring the data dir of {name}")
        env.import_data(env.nodes[name], source / "nodes" / name / "data")
    if env.net.enabled:
        env.net.restore(manifest["faults"])
    started, left_stopped = [], []
    for name, raw in saved.items():
        if raw.state.alive:
            progress(f"starting {name}")
            env.restart(name)
            if raw.state == NodeState.PAUSED:
                env.pause(name)
            started.append(name)
        else:
            left_stopped.append(name)
    extra = sorted(set(env.nodes) - set(saved))
    env.history.event(
        "snapshot_restored", None, name=source.name, started=started, faults=len(manifest["faults"])
    )
    return {
        "name": source.name,
        "started": started,
        "stopped": left_stopped,
        "not_in_snapshot": extra,
        "faults": manifest["faults"],
        "taken": manifest["taken"],
    }


def list_snapshots(root: Path | None = None) -> list[dict[str, Any]]:
    base = root or snapshot_root()
    out = []
    if base.is_dir():
        for folder in sorted(p for p in base.iterdir() if (p / MANIFEST).exists()):
            with contextlib.suppress(OSError, json.JSONDecodeError):
                manifest = json.loads((folder / MANIFEST).read_text())
                out.append(
                    {
                        "name": folder.name,
                        "taken": manifest.get("taken"),
                        "env": manifest.get("env"),
                        "nodes": len(manifest.get("nodes", [])),
                        "faults": len(manifest.get("faults", [])),
                        "path": str(folder),
                    }
                )
    return out
