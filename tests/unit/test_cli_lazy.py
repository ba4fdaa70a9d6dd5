"""The CLI's lazy tables: each names exactly the commands its modules register, with their own
help line; a lazy group lists commands without importing them and imports one to run it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import typer
from typer.testing import CliRunner

from peerlab.cli import BENCHMARKS, COMMANDS
from peerlab.cli.lazy import Lazy, lazy_group, plugin_commands


def _help_line(command: Any) -> str:
    """What typer's help shows for a command: its first paragraph, on one line."""
    text = command.short_help or command.help or ""
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def drift(table: Mapping[str, Lazy]) -> list[str]:
    """Where `table` and the commands its modules really register disagree."""
    problems = []
    registered: dict[str, tuple[str, Any]] = {}
    for module in sorted({entry.register for entry in table.values()}):
        for name, command in Lazy(module, "").load().items():
            registered[name] = (module, command)
    for name, entry in table.items():
        module, command = registered.get(name, (None, None))
        if module != entry.register:
            problems.append(f"{name}: {entry.register} does not register it")
        elif _help_line(command) != entry.help:
            problems.append(f"{name}: its help is {_help_line(command)!r}, not {entry.help!r}")
    for name in sorted(registered.keys() - table.keys()):
        problems.append(f"{name}: {registered[name][0]} registers it, the table misses it")
    return problems


def test_the_command_table_matches_the_commands() -> None:
    assert drift(COMMANDS) == []


def test_the_benchmark_table_matches_the_benchmarks() -> None:
    assert drift(BENCHMARKS) == []


def test_plugin_verbs_match_what_the_plugins_register() -> None:
    verbs = plugin_commands()
    assert {"friend", "file", "dht"} <= verbs.keys()
    assert drift(verbs) == []


def test_the_drift_check_sees_a_wrong_line_a_wrong_module_and_a_missing_command() -> None:
    table = {
        "up": Lazy("peerlab.cli.lifecycle", "Start something."),
        "status": Lazy("peerlab.cli.lifecycle", COMMANDS["status"].help),
        "net": Lazy("peerlab.cli.lifecycle", COMMANDS["net"].help),
    }
    problems = drift(table)
    assert any(p.startswith("up: its help is") for p in problems)
    assert "net: peerlab.cli.lifecycle does not register it" in problems
    assert "down: peerlab.cli.lifecycle registers it, the table misses it" in problems
    assert not any(p.startswith("status") for p in problems)


def _ghost_app() -> typer.Typer:
    ghost = {"ghost": Lazy("peerlab_no_such_module", "A command whose module does not exist.")}
    app = typer.Typer(cls=lazy_group(ghost), rich_markup_mode=None)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_help_lists_a_command_without_importing_its_module() -> None:
    result = CliRunner().invoke(_ghost_app(), ["--help"])
    assert result.exit_code == 0, result.output
    assert "ghost" in result.output
    assert "A command whose module does not exist." in result.output


def test_running_a_command_imports_its_module() -> None:
    result = CliRunner().invoke(_ghost_app(), ["ghost"])
    assert isinstance(result.exception, ModuleNotFoundError)
    assert "peerlab_no_such_module" in str(result.exception)


def test_a_typo_is_matched_against_commands_not_imported_yet() -> None:
    result = CliRunner().invoke(_ghost_app(), ["ghots"])
    assert result.exit_code == 2
    assert "No such command 'ghots'. Did you mean 'ghost'?" in result.output
