"""`peerlab init-ci github`: a GitHub Actions workflow for a project tested with peerlab.

The basic suite runs on every push and pull request; the resilience and chaos suites run
beside it as parallel jobs; the stress suite runs nightly (and on demand), then records
the run's figures with `peerlab trend`, whose SQLite file survives between runs in the
Actions cache. Every job uploads `peerlab-results/` as an artifact, pass or fail.
"""

from __future__ import annotations

from pathlib import Path

import typer

from peerlab.cli.common import console
from peerlab.errors import UsageError

DEFAULT_PATH = Path(".github/workflows/peerlab.yml")

_SETUP = """\
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
      - name: Install system packages
        run: |
          sudo apt-get update -qq
          sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {apt}
      - name: Install the project
        run: {install}
"""

_UPLOAD = """\
      - name: Upload peerlab-results
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: peerlab-results-{name}
          path: peerlab-results/
          if-no-files-found: ignore
          retention-days: 14
"""

WORKFLOW = """\
# Written by `peerlab init-ci github`. Edit freely; rerun with --force to start over.
# basic: every push and pull request. resilience, chaos: in parallel with it.
# stress: nightly (and from the Actions tab), then `peerlab trend` flags regressions.
# Every job uploads peerlab-results/ (result.json, logs, timeline, JUnit, reports).
name: peerlab

on:
  push:
  pull_request:
  schedule:
    - cron: "{cron}"
  workflow_dispatch:

env:
  CI: "true"
  PEERLAB_LOG: info

jobs:
  basic:
    if: github.event_name != 'schedule'
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
{setup}      - name: Basic suite
        run: >-
          python -m pytest {tests} -m "not (resilience or chaos or stress)"
          --junitxml=peerlab-results/junit.xml
{upload_basic}
  faults:
    if: github.event_name != 'schedule'
    runs-on: ubuntu-latest
    timeout-minutes: 45
    strategy:
      fail-fast: false
      matrix:
        suite: [resilience, chaos]
    steps:
{setup}      - name: ${{{{ matrix.suite }}}} suite
        run: >-
          python -m pytest {tests} -m "${{{{ matrix.suite }}}}"
          --junitxml=peerlab-results/junit.xml
{upload_matrix}
  stress:
    if: github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    timeout-minutes: 90
    steps:
{setup}      - name: Restore the trend history
        uses: actions/cache@v4
        with:
          path: peerlab-trends.sqlite
          key: peerlab-trends-${{{{ github.run_id }}}}
          restore-keys: peerlab-trends-
      - name: Stress suite
        run: python -m pytest {tests} -m stress --junitxml=peerlab-results/junit.xml
      - name: Trends (fails on a regression of more than 20%)
        run: >-
          python -m peerlab trend peerlab-results --db peerlab-trends.sqlite
          --label "${{{{ github.sha }}}}"
{upload_stress}"""


def workflow(
    python: str = "3.11",
    apt: tuple[str, ...] = ("chromium",),
    install: str = "pip install -e '.[dev]'",
    tests: str = "tests",
    cron: str = "17 3 * * *",
) -> str:
    """The workflow's text."""
    setup = _SETUP.format(python=python, apt=" ".join(apt) or "ca-certificates", install=install)
    return WORKFLOW.format(
        cron=cron,
        setup=setup,
        tests=tests,
        upload_basic=_UPLOAD.format(name="basic"),
        upload_matrix=_UPLOAD.format(name="${{ matrix.suite }}"),
        upload_stress=_UPLOAD.format(name="stress"),
    )


def register(app: typer.Typer) -> None:
    @app.command("init-ci")
    def init_ci(
        provider: str = typer.Argument(..., help="The CI system: github."),
        output: Path = typer.Option(DEFAULT_PATH, "--output", "-o", help="Where to write it."),
        force: bool = typer.Option(False, "--force", help="Replace an existing workflow."),
        python: str = typer.Option("3.11", "--python", help="Python version of the jobs."),
        apt: list[str] = typer.Option(
            ["chromium"], "--apt", help="Debian packages the tests need (repeat)."
        ),
        install: str = typer.Option(
            "pip install -e '.[dev]'", "--install", help="The command that installs the project."
        ),
        tests: str = typer.Option("tests", "--tests", help="Where the tests are."),
    ) -> None:
        """Write a CI workflow: basic on push, resilience/chaos in parallel, stress nightly."""
        if provider != "github":
            raise UsageError(
                f"CI provider {provider!r} is not supported",
                field="PROVIDER",
                hint="peerlab writes workflows for: github",
            )
        if output.exists() and not force:
            raise UsageError(
                f"{output} already exists",
                field="--output",
                hint="pass --force to replace it, or --output another path",
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(workflow(python, tuple(apt), install, tests))
        console.print(
            f"wrote [bold]{output}[/]: basic on every push, resilience and chaos in "
            "parallel, stress nightly; peerlab-results/ uploaded by every job"
        )
