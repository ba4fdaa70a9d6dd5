"""Lazy command groups: every command known by name and one-line help, imported when it runs.

`peerlab --help` lists every command and `peerlab net heal` runs one without importing the
modules of the others, nor what they import (pydantic, aiohttp, matplotlib, syncpeer...):
an interactive tool answers at once. A group's table maps a command name to the module
whose `register(app)` adds it and to the line `--help` shows; a system plugin declares its
verbs the same way (`SystemPlugin.commands`). A test checks the tables against the commands
the modules really register, so a table cannot drift from the code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command, Context


@dataclass(frozen=True)
class Lazy:
    """Where a command comes from, and the line `--help` shows for it."""

    register: str  # "package.module" (its `register`) or "package.module:function"
    help: str

    def load(self, markup: Any = None) -> dict[str, Command]:
        """Import the module; every command its register function adds, by name, with
        help drawn in the `markup` mode of the group it joins."""
        module_name, _, attr = self.register.partition(":")
        register = getattr(importlib.import_module(module_name), attr or "register")
        holder = typer.Typer(rich_markup_mode=markup)
        register(holder)
        return dict(typer.main.get_group(holder).commands)


class LazyGroup(TyperGroup):
    """A typer group whose commands come from `table` (and, in the root group, from the
    system plugins), each module imported the first time one of its commands is needed."""

    table: ClassVar[Mapping[str, Lazy]] = {}
    with_plugins: ClassVar[bool] = False
    _describing = False  # while its own help is drawn: list commands, import none

    def list_commands(self, ctx: Context) -> list[str]:
        plugins = plugin_commands() if self.with_plugins else {}
        return list(dict.fromkeys([*self.table, *plugins, *self.commands]))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.table.get(cmd_name)
        if entry is None and self.with_plugins:
            entry = plugin_commands().get(cmd_name)
        if entry is None:
            return None
        if self._describing:
            return TyperCommand(cmd_name, short_help=entry.help)
        for name, command in entry.load(self.rich_markup_mode).items():
            self.commands.setdefault(name, command)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: Any) -> None:
        self._describing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._describing = False

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            # Suggest among every command, not only among those imported so far.
            matches = get_close_matches(name, self.list_commands(ctx))
            suggestion = f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""
            ctx.fail(f"No such command {name!r}.{suggestion}")
        return super().resolve_command(ctx, args)


def lazy_group(table: Mapping[str, Lazy], with_plugins: bool = False) -> type[LazyGroup]:
    """The group class for typer's `Typer(cls=...)` that serves `table`."""
    return type("LazyGroup", (LazyGroup,), {"table": table, "with_plugins": with_plugins})


@cache
def plugin_commands() -> dict[str, Lazy]:
    """The verbs the installed system plugins declare (syncpeer: friend, file, dht)."""
    from peerlab.systems.plugins import plugins

    return {
        name: Lazy(plugin.cli, help)
        for plugin in plugins()
        if plugin.cli is not None
        for name, help in plugin.commands.items()
    }


def load_all(group: Any) -> None:
    """Import every command under `group` (the shell completes from the whole tree)."""
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if callable(getattr(command, "list_commands", None)):
            load_all(command)
