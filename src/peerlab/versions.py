"""Which node runs which version of its system: the `A,B=1.0` form of `--version`.

What a version changes in a node's launch is its manifest's `[versions."X.Y"]` table
(`peerlab.manifest`, applied by `peerlab.launching`); the Environment keeps each node's
version in `env.versions` (`env.start(..., version=...)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from peerlab.errors import UsageError

_NODE = re.compile(r"[A-Za-z0-9_-]+")


def parse_versions(texts: Iterable[str], field: str = "--version") -> dict[str, str]:
    """{"A": "1.0", "B": "1.0", ...} from ["A,B=1.0", ...]; a node named twice is refused."""
    chosen: dict[str, str] = {}
    for text in texts:
        nodes, equals, version = text.partition("=")
        names = [name.strip() for name in nodes.split(",")]
        if not equals or not version.strip() or not all(_NODE.fullmatch(n) for n in names):
            raise UsageError(
                f"{field} {text!r} is not NODES=VERSION",
                field=field,
                hint="e.g. --version A,B=1.0 --version C,D=1.1",
            )
        for name in names:
            if name in chosen:
                raise UsageError(
                    f"{field} names node {name!r} twice", field=field, hint="name each node once"
                )
            chosen[name] = version.strip()
    return chosen
