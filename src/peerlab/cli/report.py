"""`peerlab report`, `peerlab results`, `peerlab trend`: what a run left, and how runs compare."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from peerlab.cli.common import console, env_name, print_json, remote_env
from peerlab.report.runs import find_run, load_result
from peerlab.trend import DEFAULT_DB, TrendStore, figures_from, load_thresholds


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        run: str | None = typer.Argument(
            None,
            help="A results folder, or a run's name under peerlab-results/ (default: the newest).",
        ),
        html: bool = typer.Option(False, "--html", help="Write a self-contained HTML report."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Where the HTML goes (default: RUN/report.html)."
        ),
        results: Path = typer.Option(
            Path("peerlab-results"), "--results", help="Where runs are looked for."
        ),
    ) -> None:
        """A run's summary: outcome, seed, verdicts, faults and the replay command. Exits 1
        when the run failed, so scripts can tell."""
        folder = find_run(run, results)
        if html:
            from peerlab.report.html import write_report

            with console.status("drawing the report..."):
                path = write_report(folder, out)
            console.print(f"report: [bold]{path}[/] (self-contained; open it in a browser)")
        else:
            _summary(folder)
        if load_result(folder).get("outcome") == "failed":
            raise typer.Exit(1)

    @app.command()
    def results(
        ctx: typer.Context,
        dest: Path | None = typer.Argument(
            None, help="Folder to write (default: peerlab-results/<env>-<time>)."
        ),
        html: bool = typer.Option(False, "--html", help="Render report.html as well."),
    ) -> None:
        """Save the running network's results folder: result.json, logs, timeline, JUnit."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = dest or Path("peerlab-results") / f"{env_name(ctx)}-{stamp}"
        with console.status("collecting logs, history and state..."):
            path = Path(remote_env(ctx).call("results.save", dest=str(target.resolve())))
        console.print(f"results: [bold]{path}[/]")
        if html:
            from peerlab.report.html import write_report

            with console.status("drawing the report..."):
                console.print(f"report: [bold]{write_report(path)}[/]")

    @app.command()
    def trend(
        paths: list[Path] = typer.Argument(
            None, help="Benchmark JSON files and results folders to record as one new run."
        ),
        db: Path = typer.Option(
            DEFAULT_DB, "--db", envvar="PEERLAB_TRENDS", help="The SQLite file that keeps the runs."
        ),
        label: str | None = typer.Option(None, "--label", help="A name for this run."),
        window: int = typer.Option(5, "--window", help="Compare with this many last runs."),
        threshold: float = typer.Option(
            20.0, "--threshold", help="Percent worse than the median that alerts (exit 1)."
        ),
        warn_threshold: float = typer.Option(
            10.0, "--warn-threshold", help="Percent worse than the median that warns."
        ),
        thresholds_file: Path = typer.Option(
            Path("pyproject.toml"),
            "--thresholds",
            help="Per-figure warn and alert levels: [tool.peerlab.trend.figures] in this file.",
        ),
        min_history: int = typer.Option(
            3, "--min-history", help="Earlier runs needed before a figure is judged."
        ),
        history: str | None = typer.Option(
            None, "--history", help="Show one figure's values over runs."
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Keep each run's figures and flag regressions (exit code 1 when one is flagged)."""
        limits = load_thresholds(
            thresholds_file, warn_change=warn_threshold / 100, alert_change=threshold / 100
        )
        with TrendStore(db) as store:
            if history:
                rows = store.history(history)
                if as_json:
                    print_json(rows)
                    return
                table = Table("run", "recorded", "commit", "value", box=None, header_style="bold")
                for row in rows:
                    table.add_row(
                        str(row["run"]),
                        time.strftime("%Y-%m-%d %H:%M", time.localtime(row["recorded"])),
                        str(row["commit"] or ""),
                        f"{row['value']:g}",
                    )
                console.print(table)
                return
            if paths:
                run = store.record(figures_from(paths), label)
                if not as_json:
                    console.print(f"recorded run {run} in {db}")
            comparisons = store.compare(window=window, thresholds=limits, min_history=min_history)
        regressed = [c for c in comparisons if c.regressed]
        if as_json:
            print_json([c.to_json() for c in comparisons])
        else:
            table = Table(
                "figure",
                "value",
                "warn / alert",
                f"median of last {window}",
                "change",
                "",
                box=None,
                header_style="bold",
            )
            for c in comparisons:
                change = (
                    "-"
                    if c.change is None
                    else f"{c.change * 100:+.1f}% " + ("worse" if c.change > 0 else "better")
                )
                status = {
                    "alert": "[bold red]ALERT[/]",
                    "warn": "[yellow]WARN[/]",
                }.get(
                    c.level,
                    f"[dim]baseline ({c.history} runs)[/]" if c.median is None else "[green]ok[/]",
                )
                levels = "/".join(
                    "-" if v is None else f"{v:g}" for v in (c.limits.warn, c.limits.alert)
                )
                table.add_row(
                    c.name,
                    f"{c.value:g}",
                    levels,
                    "-" if c.median is None else f"{c.median:g}",
                    change,
                    status,
                )
            console.print(table)
            for c in comparisons:
                if c.reasons:
                    colour = "bold red" if c.level == "alert" else "yellow"
                    text = "; ".join(c.reasons)
                    console.print(
                        f"[{colour}]{c.level.upper()}[/] {c.name}: {text}", highlight=False
                    )
            warned = [c for c in comparisons if c.level == "warn"]
            if regressed or warned:
                console.print(
                    f"[bold red]{len(regressed)} alert(s)[/], [yellow]{len(warned)} warning(s)[/]: "
                    f"levels from {thresholds_file}, else {warn_threshold:g}% / {threshold:g}% "
                    f"worse than the median of the last {window} runs"
                )
        if regressed:
            raise typer.Exit(1)


def _summary(folder: Path) -> None:
    result = load_result(folder)
    outcome = result.get("outcome", "unknown")
    colour = {"passed": "green", "failed": "red"}.get(outcome, "yellow")
    console.print(
        f"[bold {colour}]{outcome.upper()}[/] {result.get('test')}  "
        f"seed {result.get('seed')}  {result.get('seconds', 0):.1f}s  ({folder})"
    )
    failure = result.get("failure")
    if failure:
        console.print(
            f"[red]failed during {failure.get('when', '?')}:[/] "
            f"{str(failure.get('message', '')).splitlines()[0][:300]}",
            highlight=False,
        )
    for verdict in result.get("verdicts") or []:
        mark = {"valid": "[green]✔[/]", "invalid": "[red]✘[/]"}.get(
            verdict.get("valid"), "[yellow]?[/]"
        )
        console.print(
            f" {mark} {verdict.get('checker')}: {verdict.get('summary')}", highlight=False
        )
        if verdict.get("valid") == "invalid" and verdict.get("evidence"):
            text = json.dumps(verdict["evidence"], default=str)
            console.print(
                f"   evidence: {text[:400]}{'…' if len(text) > 400 else ''}",
                highlight=False,
                style="dim",
            )
    net = result.get("net") or {}
    for fault in net.get("faults") or []:
        from peerlab.observe.events import describe_fault

        console.print(f" [red]⚡[/] still applied at the end: {describe_fault(fault)}")
    console.print(f"replay: [bold]{result.get('replay')}[/]")
    console.print(f"HTML: peerlab report {folder} --html")
