"""`peerlab init-ci github`: a GitHub Actions workflow for a project tested with peerlab.

One job per test category on every push and pull request, each with its time budget and
its parallelism (unit < 2 min on 4 workers, integration < 5 min on 2, e2e < 10 min on 1;
`--category` changes them); a failed test is rerun to tell flaky from real
(`--peerlab-reruns`), and a pull request runs only the tests its change can affect
(`--peerlab-impacted`, from the impact map of the last full run; everything without one).
Nightly at 02:00 the fault suites (resilience, chaos) and the stress suite run, then
`peerlab trend` flags performance regressions; on Sundays a full regression runs every test
under coverage, checks the coverage gates and refreshes the impact map. Every job uploads
`peerlab-results/`, pass or fail; the outcome store (flake rates) and the figures' history
survive between runs in the Actions cache; a failed run posts a Slack-style message to the
webhook in the `PEERLAB_WEBHOOK_URL` secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from peerlab.cli.common import console
from peerlab.errors import UsageError

DEFAULT_PATH = Path(".github/workflows/peerlab.yml")
NIGHTLY = "0 2 * * *"
WEEKLY = "0 3 * * 0"


@dataclass(frozen=True)
class Category:
    """A test category: where its tests are, how many workers, its time budget."""

    name: str
    path: str
    workers: int
    minutes: int
    marks: str = ""

    @classmethod
    def parse(cls, text: str) -> Category:
        """NAME=PATH:WORKERS:MINUTES, e.g. unit=tests/unit:4:2."""
        name, _, rest = text.partition("=")
        parts = rest.split(":")
        if not name.isidentifier() or len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
            raise UsageError(
                f"--category {text!r} is not NAME=PATH:WORKERS:MINUTES",
                field="--category",
                hint="e.g. --category unit=tests/unit:4:2",
            )
        return cls(name, parts[0], int(parts[1]), int(parts[2]))


CATEGORIES = (
    Category("unit", "tests/unit", 4, 2),
    Category("integration", "tests/integration", 2, 5),
    Category("e2e", "tests/e2e", 1, 10, "not (resilience or chaos or stress)"),
)

_SETUP = """\
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "{python}"
      - name: Install system packages
        run: |
          sudo apt-get update -qq
          sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {apt}
      - name: Install the project
        run: {install}
      - name: Restore test outcomes and figures
        uses: actions/cache@v4
        with:
          path: |
            peerlab-trends.sqlite
            peerlab-results/impact-map.json
          key: peerlab-state-{key}-${{{{ github.run_id }}}}
          restore-keys: |
            peerlab-state-{key}-
            peerlab-state-
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

_CATEGORY = """\
  {name}:
    if: github.event_name == 'push' || github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    timeout-minutes: {job_minutes}
    steps:
{setup}      - name: {name} tests ({workers} workers, under {minutes} min)
        timeout-minutes: {minutes}
        env:
          CHANGED_SINCE: ${{{{ github.event.pull_request.base.sha }}}}
        run: >-
          python -m pytest {path}{marks} -n {workers} --peerlab-reruns 2
          --peerlab-trends peerlab-trends.sqlite
          ${{CHANGED_SINCE:+--peerlab-impacted $CHANGED_SINCE}}
          --junitxml=peerlab-results/junit-{name}.xml
{upload}"""

WORKFLOW = """\
# Written by `peerlab init-ci github`. Edit freely; rerun with --force to start over.
# push, pull request: {names}, in parallel (a pull request runs the tests its change can
# affect). Nightly at 02:00: resilience, chaos, stress, then `peerlab trend`. Sundays: the
# full regression under coverage (gates, impact map). Every job uploads peerlab-results/;
# a failure posts to the webhook in the PEERLAB_WEBHOOK_URL secret.
name: peerlab

on:
  push:
  pull_request:
  schedule:
    - cron: "{nightly}"
    - cron: "{weekly}"
  workflow_dispatch:

env:
  CI: "true"
  PEERLAB_LOG: info

jobs:
{categories}
  nightly:
    if: github.event.schedule == '{nightly}' || github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    timeout-minutes: 90
    strategy:
      fail-fast: false
      matrix:
        suite: [resilience, chaos, stress]
    steps:
{setup_nightly}      - name: ${{{{ matrix.suite }}}} suite
        run: >-
          python -m pytest {tests} -m "${{{{ matrix.suite }}}}" --peerlab-reruns 2
          --peerlab-trends peerlab-trends.sqlite --junitxml=peerlab-results/junit.xml
      - name: Trends (warn and alert levels; fails on an alert)
        if: matrix.suite == 'stress'
        run: >-
          python -m peerlab trend peerlab-results --db peerlab-trends.sqlite
          --label "${{{{ github.sha }}}}"
{upload_nightly}
  full-regression:
    if: github.event.schedule == '{weekly}'
    runs-on: ubuntu-latest
    timeout-minutes: 180
    steps:
{setup_weekly}      - name: Every test under coverage
        run: >-
          python -m coverage run -m pytest {tests} -n 2 --peerlab-reruns 2
          --peerlab-trends peerlab-trends.sqlite --junitxml=peerlab-results/junit.xml
      - name: Impact map for pull requests
        if: always()
        run: python -m coverage combine -q && python -m peerlab impact-map
      - name: Coverage gates
        run: python -m peerlab coverage-gate
      - name: Flake rates of the last 20 runs
        if: always()
        run: python -m peerlab flaky --db peerlab-trends.sqlite --last 20
{upload_weekly}
  notify:
    needs: [{needs}, nightly, full-regression]
    if: failure()
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - name: Post the failure to the team's webhook (Slack-style payload)
        env:
          WEBHOOK: ${{{{ secrets.PEERLAB_WEBHOOK_URL }}}}
          REPOSITORY: ${{{{ github.server_url }}}}/${{{{ github.repository }}}}
          TEXT: >-
            peerlab: ${{{{ github.workflow }}}} failed on ${{{{ github.ref_name }}}}
            (${{{{ github.event_name }}}}, ${{{{ github.sha }}}}):
        run: |
          if [ -z "$WEBHOOK" ]; then echo "no PEERLAB_WEBHOOK_URL secret: nothing sent"; exit 0; fi
          export TEXT="$TEXT $REPOSITORY/actions/runs/$GITHUB_RUN_ID"
          payload=$(python3 -c 'import json, os; print(json.dumps({{"text": os.environ["TEXT"]}}))')
          curl --fail --silent --show-error --max-time 30 -X POST \\
            -H 'Content-Type: application/json' --data "$payload" "$WEBHOOK"
"""


def workflow(
    python: str = "3.11",
    apt: tuple[str, ...] = ("chromium",),
    install: str = "pip install -e '.[dev]'",
    tests: str = "tests",
    categories: tuple[Category, ...] = CATEGORIES,
) -> str:
    """The workflow's text."""
    packages = " ".join(apt) or "ca-certificates"

    def setup(key: str) -> str:
        return _SETUP.format(python=python, apt=packages, install=install, key=key)

    jobs = [
        _CATEGORY.format(
            name=c.name,
            path=c.path,
            marks=f' -m "{c.marks}"' if c.marks else "",
            workers=c.workers,
            minutes=c.minutes,
            job_minutes=c.minutes + 15,  # the budget is the tests'; setup comes on top
            setup=setup(c.name),
            upload=_UPLOAD.format(name=c.name),
        )
        for c in categories
    ]
    return WORKFLOW.format(
        names=", ".join(c.name for c in categories),
        nightly=NIGHTLY,
        weekly=WEEKLY,
        categories="\n".join(jobs),
        tests=tests,
        needs=", ".join(c.name for c in categories),
        setup_nightly=setup("nightly"),
        setup_weekly=setup("weekly"),
        upload_nightly=_UPLOAD.format(name="${{ matrix.suite }}"),
        upload_weekly=_UPLOAD.format(name="full-regression"),
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
        category: list[str] = typer.Option(
            [],
            "--category",
            help="A test category NAME=PATH:WORKERS:MINUTES (repeat; default: "
            "unit=tests/unit:4:2, integration=tests/integration:2:5, e2e=tests/e2e:1:10).",
        ),
    ) -> None:
        """Write a CI workflow: categories on push, fault and stress suites nightly, a full
        regression weekly, results uploaded, failures posted to a webhook."""
        if provider != "github":
            raise UsageError(
                f"CI provider {provider!r} is not supported",
                field="PROVIDER",
                hint="peerlab writes workflows for: github",
            )
        categories = tuple(Category.parse(text) for text in category) or CATEGORIES
        if output.exists() and not force:
            raise UsageError(
                f"{output} already exists",
                field="--output",
                hint="pass --force to replace it, or --output another path",
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(workflow(python, tuple(apt), install, tests, categories))
        console.print(
            f"wrote [bold]{output}[/]: {', '.join(c.name for c in categories)} on every push; "
            "resilience, chaos and stress nightly; a full regression on Sundays; "
            "peerlab-results/ uploaded by every job; failures posted to PEERLAB_WEBHOOK_URL"
        )
