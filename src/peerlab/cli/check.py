"""`peerlab check linearizable` and `peerlab history export`: checkers on a recorded history.

Exit codes: 0 valid, 1 invalid, 3 unknown (e.g. the time limit ran out). Bad usage (a
missing file, an unknown model, a history that cannot be read) raises `UsageError`, which
the main entry point prints as one line and turns into exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from peerlab.checkers import MODELS, Verdict, linearizable, model_named
from peerlab.errors import UsageError
from peerlab.history import Entry
from peerlab.history_edn import export_edn, read_history

EXIT_CODES = {"valid": 0, "invalid": 1, "unknown": 3}
_STYLE = {"valid": "bold green", "invalid": "bold red", "unknown": "bold yellow"}
# Evidence keys whose items are operations, shown as tables.
_OPERATION_LISTS = ("prefix_tail", "could_not_linearize")


def register(app: typer.Typer) -> None:
    """Add the `check` and `history` command groups to the main app."""
    check_app = typer.Typer(help="Check a recorded history.", no_args_is_help=True)
    history_app = typer.Typer(help="Convert recorded histories.", no_args_is_help=True)
    check_app.command("linearizable")(check_linearizable)
    history_app.command("export")(export_history)
    app.add_typer(check_app, name="check")
    app.add_typer(history_app, name="history")


def check_linearizable(
    history: Annotated[Path, typer.Argument(help="History file: peerlab .jsonl or Jepsen .edn.")],
    model: Annotated[
        str, typer.Option(help=f"Sequential model: {', '.join(MODELS)}.")
    ] = "register",
    time_limit: Annotated[
        float | None,
        typer.Option(min=0, help="Give up after this many seconds (verdict unknown)."),
    ] = None,
    initial: Annotated[
        str | None, typer.Option(help="Initial value of the model, as JSON (default null).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check that HISTORY is linearizable with respect to a model."""
    if model not in MODELS:
        raise UsageError(
            f"unknown model {model!r}", field="--model", hint=f"use one of: {', '.join(MODELS)}"
        )
    try:
        spec = model_named(model, _initial(initial))
    except ValueError as exc:
        raise UsageError(str(exc), field="--initial", hint="e.g. --initial '[1, 2]'") from exc
    entries = _read(history)
    try:
        verdict = linearizable(entries, spec, time_limit=time_limit)
    except ValueError as exc:
        raise UsageError(
            f"{history}: {exc}", field="HISTORY", hint="check the history or pick another --model"
        ) from exc
    if as_json:
        typer.echo(json.dumps(verdict.to_json(), default=str))
    else:
        render_verdict(verdict, Console())
    raise typer.Exit(EXIT_CODES[verdict.valid])


def export_history(
    history: Annotated[Path, typer.Argument(help="History file to convert (.jsonl).")],
    edn: Annotated[bool, typer.Option("--edn", help="Write Jepsen EDN.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """Export HISTORY for other tools (Jepsen EDN: client ops, faults as :nemesis ops)."""
    if not edn:
        raise UsageError("no export format chosen", field="--edn", hint="add --edn (Jepsen EDN)")
    text = export_edn(_read(history))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def render_verdict(verdict: Verdict, console: Console) -> None:
    """Print a verdict for people: the outcome, the summary, the evidence, then the stats."""
    console.print(
        f"[{_STYLE[verdict.valid]}]{verdict.valid.upper()}[/] {verdict.checker}",
        highlight=False,
    )
    console.print(verdict.summary, highlight=False)
    evidence = verdict.evidence
    if evidence:
        console.print("[bold]Evidence[/]")
        if isinstance(evidence, dict):
            for key, value in evidence.items():
                if key in _OPERATION_LISTS and value:
                    console.print(_operations_table(key.replace("_", " "), value))
                elif value is not None:
                    console.print(f"  {key}: {_cell(value)}", highlight=False)
        else:
            console.print_json(data=evidence, default=str)
    shown = "  ".join(f"{key}={value}" for key, value in verdict.stats.items())
    console.print(f"[dim]{shown}[/]", highlight=False)


def _operations_table(title: str, ops: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    columns = ["index", "process", "type", "f", "value", "result"]
    extra = sorted({key for op in ops for key in op} - {*columns, "complete_index"})
    for column in columns + extra:
        table.add_column(column)
    for op in ops:
        table.add_row(*(_cell(op.get(column)) for column in columns + extra))
    return table


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _initial(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(
            f"--initial {text!r} is not JSON",
            field="--initial",
            hint="write e.g. --initial 0, or --initial '\"text\"' for a string",
        ) from None


def _read(path: Path) -> list[Entry]:
    if not path.is_file():
        raise UsageError(
            f"history file {str(path)!r} not found",
            field="HISTORY",
            hint="give the path of a history .jsonl (peerlab) or .edn (Jepsen) file",
        )
    try:
        return read_history(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read history {str(path)!r}: {exc}",
            field="HISTORY",
            hint="peerlab writes history.jsonl in the results folder; Jepsen writes history.edn",
        ) from exc
