"""A node's data dir on this machine: the files a launch writes into it, and copies of it.

Every backend of this machine keeps a node's data in `node.data_dir` (a container mounts
it), so writing a manifest's files, exporting for snapshots and importing are the same
for all of them.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from peerlab.backends.base import Launch
from peerlab.node import Node


def write_files(launch: Launch) -> None:
    """Make the data dir and write `launch.files` that it does not have yet (a node's own
    rewrites of its config are kept)."""
    launch.data_dir.mkdir(parents=True, exist_ok=True)
    for name, text in launch.files.items():
        path = launch.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def export_data(node: Node, target: Path) -> None:
    if node.data_dir.exists():
        shutil.copytree(node.data_dir, target, symlinks=True, ignore=_special_files)


def import_data(node: Node, source: Path) -> None:
    if node.data_dir.exists():
        shutil.rmtree(node.data_dir)
    if source.exists():
        shutil.copytree(source, node.data_dir, symlinks=True)
    else:
        node.data_dir.mkdir(parents=True)


def _special_files(directory: str, names: list[str]) -> list[str]:
    """Sockets and pipes in a data dir cannot be copied, and mean nothing once copied."""
    skipped = []
    for name in names:
        path = Path(directory) / name
        with contextlib.suppress(OSError):
            if not (path.is_file() or path.is_dir() or path.is_symlink()):
                skipped.append(name)
    return skipped
