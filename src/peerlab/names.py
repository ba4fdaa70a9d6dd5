"""User-given names that become paths, and removals that stay inside peerlab's folders.

An environment, a peer or a snapshot is a folder named after what the user typed, so a name
is checked before anything is created or removed: letters, digits, `.`, `_` and `-`, a letter
or digit first, at most 64 characters (no `/`, no `..`, never empty or absolute). Removals go
through `remove_tree`, which refuses any path outside the root it is given, so a name that
slipped past a check still cannot delete someone else's files.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from peerlab.errors import PeerlabError, UsageError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RULE = "letters, digits, '.', '_' and '-', a letter or digit first, at most 64 characters"


def check_name(value: object, what: str, field: str, example: str = "A") -> str:
    """`value` if it is a safe name; otherwise a UsageError naming `what` and the rule."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else "a long name"
        raise UsageError(
            f"{what} name {shown} is not usable: it would become a folder",
            field=field,
            hint=f"use {RULE}, e.g. {example}",
        )
    return value


def child(root: Path, name: str, what: str, field: str) -> Path:
    """The folder `root/name` for a checked name."""
    return root / check_name(name, what, field)


def inside(path: Path, root: Path) -> bool:
    """True when `path` is strictly below `root`. The folders on the way are resolved; a
    symbolic link at the end is the link itself (removing it leaves what it points to)."""
    base = root.resolve()
    resolved = path.parent.resolve() / path.name if path.is_symlink() else path.resolve()
    return resolved != base and resolved.is_relative_to(base)


def remove_tree(path: Path, root: Path) -> None:
    """Delete the folder `path`, which must lie below `root`; a path elsewhere is refused
    (a bug, never a user's file removed)."""
    if not inside(path, root):
        raise PeerlabError(f"refused to remove {path}: it is not inside {root}")
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
