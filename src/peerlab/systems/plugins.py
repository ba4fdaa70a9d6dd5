"""System plugins: a system's own CLI verbs and pytest helpers, beside the generic ones.

A package registers a `SystemPlugin` in the `peerlab.systems` entry-point group:

    [project.entry-points."peerlab.systems"]
    mysystem = "mypackage.peerlab_plugin:PLUGIN"

`cli` names a function `register(app: typer.Typer)` that adds commands (syncpeer adds
`peerlab friend`, `file` and `dht`); `pytest` names a module that the pytest plugin loads
as a plugin of its own (fixtures, assertion helpers). Both are "module:attribute" /
"module" strings, imported only when used, so a plugin costs nothing to commands that do
not need it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

GROUP = "peerlab.systems"


@dataclass(frozen=True)
class SystemPlugin:
    """What a system adds to peerlab's two faces."""

    name: str
    cli: str | None = None  # "module:register", register(app) adds commands
    pytest: str | None = None  # a module pytest loads as a plugin

    def register_cli(self, app: Any) -> None:
        if self.cli is not None:
            module_name, _, attr = self.cli.partition(":")
            register: Callable[[Any], None] = getattr(importlib.import_module(module_name), attr)
            register(app)


def plugins() -> list[SystemPlugin]:
    """Every installed system plugin, in name order."""
    found = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        plugin = entry.load()
        if isinstance(plugin, SystemPlugin):
            found.append(plugin)
    return found
