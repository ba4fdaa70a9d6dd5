"""A results folder on disk: find one, read its result.json, and the versions a run records."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError, UsageError

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

RESULT = "result.json"


def versions(env: EnvironmentAPI | None = None) -> dict[str, Any]:
    try:
        peerlab_version = importlib.metadata.version("peerlab")
    except importlib.metadata.PackageNotFoundError:
        peerlab_version = "source"
    out: dict[str, Any] = {
        "peerlab": peerlab_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if env is not None:
        systems = {}
        for name, spec in env.systems.items():
            source = Path(str(spec.source))
            digest = None
            with contextlib.suppress(OSError):
                digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
            systems[name] = {"manifest": str(source), "manifest_sha256": digest}
        out["systems"] = systems
    return out


def load_result(run: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads((run / RESULT).read_text())
    except FileNotFoundError:
        raise PeerlabError(
            f"{run} has no {RESULT}: it is not a peerlab results folder",
            hint="name a folder under peerlab-results/",
        ) from None
    return result


def find_run(run: str | None, base: Path = Path("peerlab-results")) -> Path:
    """A run folder: a path, a name under `base`, or (None) the newest run there."""
    if run:
        for candidate in (Path(run), base / run):
            if (candidate / RESULT).exists():
                return candidate
        raise UsageError(
            f"no results folder {run!r}",
            field="RUN",
            hint=f"a folder with a {RESULT}; runs are under {base}/",
        )
    runs = sorted(
        (p.parent for p in base.glob(f"*/{RESULT}")), key=lambda p: (p / RESULT).stat().st_mtime
    )
    if not runs:
        raise UsageError(
            f"there are no runs in {base}/",
            field="RUN",
            hint="run a test or `peerlab scenario run NAME` first, or name a folder",
        )
    return runs[-1]
