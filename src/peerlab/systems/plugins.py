"""System plugins: a system's own CLI verbs and pytest helpers, beside the generic ones.

A package registers a `SystemPlugin` in the `peerlab.systems` entry-point group:

    [project.entry-points."peerlab.systems"]
    mysystem = "mypackage.peerlab_plugin:PLUGIN"

`cli` names a function `register(app: typer.Typer)` that adds commands (syncpeer adds
`peerlab friend`, `file` and `dht`), and `commands` names each of them with the line
`peerlab --help` shows, so that listing them imports nothing; `pytest` names a module that
the pytest plugin loads as a plugin of its own (fixtures, assertion helpers). Both are
"module:attribute" / "module" strings, imported only when used, so a plugin costs nothing
to commands that do not need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points

GROUP = "peerlab.systems"


@dataclass(frozen=True)
class SystemPlugin:
    """What a system adds to peerlab's two faces."""

    name: str
    cli: str | None = None  # "module:register", register(app) adds commands
    commands: Mapping[str, str] = field(default_factory=dict)  # what `cli` adds: name -> help
    pytest: str | None = None  # a module pytest loads as a plugin

    def __post_init__(self) -> None:
        if self.cli is not None and not self.commands:
            raise ValueError(
                f"system plugin {self.name!r} names cli={self.cli!r} but no commands: "
                "list them as commands={name: the line `peerlab --help` shows}"
            )


def plugins() -> list[SystemPlugin]:
    """Every installed system plugin, in name order."""
    found = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        plugin = entry.load()
        if isinstance(plugin, SystemPlugin):
            found.append(plugin)
    return found
