"""`peerlab flaky`, `peerlab impacted`, `peerlab impact-map`, `peerlab coverage-gate`: the
test-automation commands (docs/test-automation.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from peerlab.automation import impact
from peerlab.cli.common import console, print_json
from peerlab.errors import UsageError
from peerlab.trend import DEFAULT_DB


def register(app: typer.Typer) -> None:
    @app.command()
    def flaky(
        last: int = typer.Option(20, "--last", "-k", min=1, help="Over this many suite runs."),
        db: Path = typer.Option(
            DEFAULT_DB, "--db", envvar="PEERLAB_TRENDS", help="The trend store's SQLite file."
        ),
        show_all: bool = typer.Option(False, "--all", help="Also tests that never failed."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Flake rates per test over the last runs (recorded by pytest with peerlab)."""
        from peerlab.automation.outcomes import OutcomeStore

        if not db.exists():
            raise UsageError(
                f"--db {db} does not exist",
                field="--db",
                hint="run pytest with peerlab first (it records every outcome), or name the file",
            )
        with OutcomeStore(db) as store:
            rates = store.flake_rates(last)
            suite = store.suite_flake_rate(last)
        shown = rates if show_all else [r for r in rates if r.flaky or r.failed]
        if as_json:
            print_json({"suite": suite, "tests": [r.to_json() for r in shown]})
            return
        table = Table("test", "runs", "flaky", "failed", "flake rate", "last", box=None)
        for rate in shown:
            table.add_row(
                rate.test,
                str(rate.runs),
                str(rate.flaky),
                str(rate.failed),
                f"{rate.rate:.1%}",
                rate.last,
                style="yellow" if rate.flaky else "red" if rate.failed else None,
            )
        console.print(table)
        console.print(
            f"suite flake rate {suite['flake_rate']:.1%} over the last {suite['suites']} runs "
            f"({suite['flaky']} flaky, {suite['failed']} failed of {suite['test_runs']} test "
            f"runs); {suite['false_alarm_share']:.0%} of first failures were flaky"
        )

    @app.command()
    def impacted(
        since: str = typer.Option(..., "--since", help="The git revision the change starts at."),
        impact_map: Path = typer.Option(
            impact.DEFAULT_MAP, "--map", help="The impact map (`peerlab impact-map` writes it)."
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The tests the change since REV can affect (everything when the map cannot tell)."""
        root = impact.repo_root(Path.cwd())
        found = impact.impacted(root, since, impact.load_map(impact_map))
        if as_json:
            print_json(found.to_json())
            return
        if found.everything:
            for reason in found.reasons:
                console.print(f"[yellow]every test:[/] {reason}", highlight=False)
            return
        for test in sorted(found.tests | found.paths):
            typer.echo(test)
        if not found.tests and not found.paths:
            console.print("[dim]no test is affected[/]")

    @app.command("impact-map")
    def impact_map_command(
        coverage_file: Path = typer.Option(
            Path(".coverage"), "--coverage", help="The combined coverage data file."
        ),
        out: Path = typer.Option(impact.DEFAULT_MAP, "--out", "-o", help="Where the map goes."),
    ) -> None:
        """Build the change-impact map from a coverage run with per-test contexts."""
        root = impact.repo_root(Path.cwd())
        data = impact.build_map(coverage_file.resolve(), root)
        impact.write_map(data, out)
        console.print(
            f"impact map: [bold]{out}[/] ({len(data['tests'])} tests, "
            f"{len(data['files'])} files, commit {data['commit'][:12]})"
        )

    @app.command("coverage-gate")
    def coverage_gate(
        coverage_file: Path = typer.Option(
            Path(".coverage"), "--coverage", help="The combined coverage data file."
        ),
        pyproject: Path = typer.Option(
            Path("pyproject.toml"), "--config", help="Where the thresholds are."
        ),
    ) -> None:
        """Fail (exit 1) when the project or a gated module is under its coverage threshold."""
        from peerlab.automation.coverage_gate import check

        gates = check(coverage_file, pyproject)
        table = Table("covered", "threshold", "", "what", box=None)
        for gate in gates:
            mark = "[green]ok[/]" if gate.passed else "[bold red]BELOW[/]"
            table.add_row(f"{gate.percent:.1f}%", f"{gate.threshold:g}%", mark, gate.what)
        console.print(table)
        if not all(gate.passed for gate in gates):
            raise typer.Exit(1)
