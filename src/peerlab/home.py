"""Where peerlab keeps a user's state: `$PEERLAB_HOME` (default `~/.peerlab`), holding the
environments the CLI runs (`envs/<name>/`), saved snapshots (`snapshots/<name>/`) and the
results `peerlab down` saves (`results/<env>-<time>/`); and the machine-wide scratch space
of runs (`$PEERLAB_RUNTIME`), and scratch space in memory for runs whose files are many and
short-lived (`$PEERLAB_SCRATCH`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def peerlab_home() -> Path:
    return Path(os.environ.get("PEERLAB_HOME") or Path.home() / ".peerlab")


def runtime_dir() -> Path:
    """Machine-wide scratch space for this user: leases, reaper state files, sockets."""
    base = os.environ.get("PEERLAB_RUNTIME") or f"/tmp/peerlab-{os.getuid()}"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


SHARED_MEMORY = Path("/dev/shm")


def scratch_dir(create: bool = True) -> Path:
    """Scratch space in memory, for the files of simulated runs: thousands of nodes' logs,
    written and removed within one run. On a disk each removal costs a journal write (and a
    discard where the filesystem is mounted with it: 3 ms a file on some machines, half a
    minute for a 10,000-node run); in memory it costs nothing.

    `$PEERLAB_SCRATCH`; else `/dev/shm/peerlab-<uid>` when /dev/shm is there and that
    folder is this user's own (created 0700; one that another user made, or a link, is not
    used); else the runtime dir. `create=False` only says which it is, creating nothing (the
    reaper asks so before removing what lies in it)."""
    chosen = os.environ.get("PEERLAB_SCRATCH")
    if chosen:
        path = Path(chosen)
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
    if SHARED_MEMORY.is_dir():
        path = SHARED_MEMORY / f"peerlab-{os.getuid()}"
        try:
            if create:
                path.mkdir(exist_ok=True, mode=0o700)
            status = path.lstat()
        except OSError:
            return runtime_dir()
        if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid():
            return path
    return runtime_dir()


def results_root() -> Path:
    """Where `peerlab down` keeps the results of the networks it stops."""
    return peerlab_home() / "results"
