"""Where peerlab keeps a user's state: `$PEERLAB_HOME` (default `~/.peerlab`), holding the
environments the CLI runs (`envs/<name>/`) and saved snapshots (`snapshots/<name>/`)."""

from __future__ import annotations

import os
from pathlib import Path


def peerlab_home() -> Path:
    return Path(os.environ.get("PEERLAB_HOME") or Path.home() / ".peerlab")
