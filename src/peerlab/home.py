"""Where peerlab keeps a user's state: `$PEERLAB_HOME` (default `~/.peerlab`), holding the
environments the CLI runs (`envs/<name>/`), saved snapshots (`snapshots/<name>/`) and the
results `peerlab down` saves (`results/<env>-<time>/`); and the machine-wide scratch space
of runs (`$PEERLAB_RUNTIME`)."""

from __future__ import annotations

import os
from pathlib import Path


def peerlab_home() -> Path:
    return Path(os.environ.get("PEERLAB_HOME") or Path.home() / ".peerlab")


def runtime_dir() -> Path:
    """Machine-wide scratch space for this user: leases, reaper state files, sockets."""
    base = os.environ.get("PEERLAB_RUNTIME") or f"/tmp/peerlab-{os.getuid()}"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def results_root() -> Path:
    """Where `peerlab down` keeps the results of the networks it stops."""
    return peerlab_home() / "results"
