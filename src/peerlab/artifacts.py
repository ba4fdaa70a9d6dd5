"""A run's artifacts on disk: node logs, the history, and each node's data dir."""

from __future__ import annotations

import shutil
from pathlib import Path

from peerlab import log
from peerlab.api import EnvironmentAPI
from peerlab.observe.stamps import FILE as STAMPS


def save_artifacts(env: EnvironmentAPI, target: Path, *, snapshot: bool = True) -> Path:
    """Copy node logs, the history and (with `snapshot`) each node's data dir to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for node in env.nodes.values():
        node_target = target / "nodes" / node.name
        node_target.mkdir(parents=True, exist_ok=True)
        for path in (node.stdout_path, node.stderr_path, node.stdout_path.parent / STAMPS):
            if path.exists():
                shutil.copy2(path, node_target / path.name)
        if snapshot:
            data = node_target / "data"
            if data.exists():
                shutil.rmtree(data)
            env.export_data(node, data)
    history = env.history.path
    if history is not None and history.exists():
        shutil.copy2(history, target / "history.jsonl")
    log.info("artifacts_saved", path=str(target))
    return target
