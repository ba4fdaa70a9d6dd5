"""Mutation testing of the chaos scenarios: switch on each deliberate bug in syncpeer, run the
scenarios that should catch it, and print which test killed it.

    python tests/mutants/run.py                 # every mutant (make mutants)
    python tests/mutants/run.py --only rebroadcast,stale-etag --jobs 1

First a control run: every listed scenario must pass with no mutant on (a scenario that
fails anyway proves nothing). Then, per mutant, pytest runs its scenarios with
`SYNCPEER_MUTANTS=<mutant>` in the environment, which every syncpeer node inherits, and stops
at the first failure: that test killed it. Exits 0 when every mutant was killed, 1 when one
survived (or its run broke), 2 when the control run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from catalog import KILLERS

from syncpeer.core.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]

# A test fails in its body (FAILED) or in a final check at teardown (ERROR).
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class Outcome:
    mutant: str
    killed_by: str | None
    seconds: float
    returncode: int
    output: str


def pytest_run(tests: list[str], mutant: str | None, results: Path) -> Outcome:
    switches = ("SYNCPEER_MUTANTS", "SYNCPEER_BYZANTINE")
    env = {k: v for k, v in os.environ.items() if k not in switches}
    if mutant:
        env["SYNCPEER_MUTANTS"] = mutant
    command = [
        sys.executable,
        "-m",
        "pytest",
        *tests,
        "-x",
        "-q",
        "-rfE",
        "-p",
        "no:cacheprovider",
        "--peerlab-results",
        str(results / (mutant or "control")),
    ]
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    failed = FAILED.search(output)
    return Outcome(
        mutant or "control",
        failed.group(1) if failed else None,
        time.monotonic() - began,
        done.returncode,
        output,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated mutants (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--no-control", action="store_true", help="skip the control run")
    options = parser.parse_args()
    chosen = [m.strip() for m in options.only.split(",") if m.strip()] or sorted(KILLERS)
    unknown = [m for m in chosen if m not in KILLERS]
    if unknown:
        print(f"unknown mutant(s): {', '.join(unknown)}; known: {', '.join(sorted(KILLERS))}")
        return 2
    results = Path(tempfile.mkdtemp(prefix="peerlab-mutants-"))
    if not options.no_control:
        everything = sorted({test for m in chosen for test in KILLERS[m]})
        print(f"control: {len(everything)} scenarios with no mutant on ...", flush=True)
        control = pytest_run(everything, None, results)
        if control.returncode != 0:
            print(control.output[-4000:])
            print(f"control run failed ({control.killed_by}): fix the scenarios first")
            return 2
        print(f"control passed in {control.seconds:.0f}s", flush=True)
    with ThreadPoolExecutor(max(1, options.jobs)) as pool:
        outcomes = list(pool.map(lambda m: pytest_run(KILLERS[m], m, results), chosen))
    width = max(len(m) for m in chosen)
    print(f"\n{'mutant':<{width}}  {'result':<8}  {'seconds':>7}  killed by")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 7}  {'-' * 40}")
    survivors = []
    for outcome in outcomes:
        killed = outcome.returncode == 1 and outcome.killed_by is not None
        if not killed:
            survivors.append(outcome)
        result = "killed" if killed else ("SURVIVED" if outcome.returncode == 0 else "ERROR")
        print(
            f"{outcome.mutant:<{width}}  {result:<8}  {outcome.seconds:7.1f}  "
            f"{outcome.killed_by or '-'}"
        )
    print()
    for outcome in outcomes:
        print(f"  {outcome.mutant}: {MUTANTS[outcome.mutant]}")
    for outcome in survivors:
        print(f"\n--- {outcome.mutant} (exit {outcome.returncode}) ---\n{outcome.output[-3000:]}")
    print(
        f"\n{len(outcomes) - len(survivors)} of {len(outcomes)} mutants killed; "
        f"artifacts in {results}"
    )
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
