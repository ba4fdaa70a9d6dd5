"""`peerlab scenario list | run NAME`: named scenarios against the live network, narrated.

The scenario runs inside the supervisor (next to the network); it records its narration in
the history, and this command follows the timeline to tell it as it happens, with a
progress bar for each long wait. At the end the run's results folder is written.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from peerlab.cli.common import console, env_name, remote_env
from peerlab.errors import PeerlabError, UsageError
from peerlab.observe.events import TimelineEvent
from peerlab.observe.filters import EventFilter
from peerlab.observe.render import event_text
from peerlab.scenarios import get, scenarios

scenario_app = typer.Typer(
    help="Named scenarios that run against the live network.", no_args_is_help=True
)


@scenario_app.command("list")
def scenario_list() -> None:
    """The scenarios shipped with peerlab."""
    table = Table("name", "needs", "what it does", "parameters", box=None, header_style="bold")
    for scenario in scenarios().values():
        needs = f"{scenario.min_peers}+ {scenario.needs_system or ''} peers".replace("  ", " ")
        table.add_row(
            f"[bold]{scenario.name}[/]",
            needs,
            scenario.summary,
            "\n".join(f"{k}: {v}" for k, v in scenario.params.items()),
        )
    console.print(table)


def _params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise UsageError(
                f"--param {value!r} is not KEY=VALUE",
                field="--param",
                hint="for example --param timeout=60",
            )
        try:
            params[key] = float(raw) if "." in raw else int(raw)
        except ValueError:
            params[key] = raw
    return params


@scenario_app.command("run")
def scenario_run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A scenario from `peerlab scenario list`."),
    param: list[str] = typer.Option([], "--param", "-p", help="KEY=VALUE (repeat)."),
    results: Path = typer.Option(
        Path("peerlab-results"), "--results", help="Where the run's results folder goes."
    ),
    html: bool = typer.Option(False, "--html", help="Render the HTML report at the end."),
) -> None:
    """Run a scenario on the live network, telling what it does as it does it."""
    scenario = get(name)
    params = _params(param)
    remote = remote_env(ctx)
    began = time.time()
    watch = EventFilter(since=began - 0.5, kinds=("scenario", "fault", "event"))
    cursor = remote.call("observe.timeline", filter=watch.to_json())["cursor"]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = remote.call(
                "scenario.run", name=name, params=params, timeout=scenario.budget + 120
            )
        except PeerlabError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"scenario {name}", daemon=True)
    worker.start()
    bars: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:

        def show(events: list[dict[str, Any]]) -> None:
            for raw in events:
                event = TimelineEvent.from_json(raw)
                if event.event == "scenario_progress":
                    what = str(event.fields.get("what"))
                    if what not in bars:
                        bars[what] = progress.add_task(what, total=event.fields.get("total"))
                    progress.update(
                        bars[what],
                        completed=event.fields.get("done"),
                        total=event.fields.get("total"),
                    )
                elif event.event == "scenario_step":
                    style = "bold red" if event.level == "error" else ""
                    progress.console.print(
                        f"[dim]{time.time() - began:6.1f}s[/] ▶ {event.fields.get('text')}",
                        style=style,
                        highlight=False,
                    )
                elif event.kind in ("fault", "event") and event.event != "verdict":
                    progress.console.print(event_text(event), highlight=False)

        while worker.is_alive():
            worker.join(0.25)  # the narration's refresh period
            answer = remote.call("observe.timeline", cursor=cursor, filter=watch.to_json())
            cursor = answer["cursor"]
            show(answer["events"])
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    target = results / f"scenario-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(
        remote.call(
            "results.save",
            dest=str(target.resolve()),
            outcome="passed" if result["passed"] else "failed",
            test=f"scenario {name} ({env_name(ctx)})",
        )
    )
    for verdict in result["verdicts"]:
        mark = "[green]✔[/]" if verdict["valid"] == "valid" else "[red]✘[/]"
        console.print(f" {mark} {verdict['checker']}: {verdict['summary']}", highlight=False)
    word = "[bold green]passed[/]" if result["passed"] else "[bold red]FAILED[/]"
    console.print(f"scenario {name} {word} in {result['seconds']:.1f}s; results: {folder}")
    if html:
        from peerlab.report.html import write_report

        console.print(f"report: {write_report(folder)}")
    if not result["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(scenario_app, name="scenario")
