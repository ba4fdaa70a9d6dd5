"""Where peerlab keeps a user's state: `$PEERLAB_HOME` (default `~/.peerlab`), holding the
environments the CLI runs (`envs/<name>/`), saved snapshots (`snapshots/<name>/`) and the
results `peerlab down` saves (`results/<env>-<time>/`)."""

from __future__ import annotations

import os
from pathlib import Path


def peerlab_home() -> Path:
    return Path(os.environ.get("PEERLAB_HOME") or Path.home() / ".peerlab")


def results_root() -> Path:
    """Where `peerlab down` keeps the results of the networks it stops."""
    return peerlab_home() / "results"
