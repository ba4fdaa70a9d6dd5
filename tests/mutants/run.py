"""Mutation testing of the chaos scenarios: switch on each deliberate bug in syncpeer, run the
scenarios that should catch it, and print which test killed it, on real processes, on the
simulator, or on both side by side.

    python tests/mutants/run.py                       # every mutant, real processes (make mutants)
    python tests/mutants/run.py --backends sim        # the same scenarios, simulated
    python tests/mutants/run.py --backends local,sim  # both, side by side, with wall times
    python tests/mutants/run.py --only rebroadcast,stale-etag --jobs 1

First a control run per backend: every listed scenario must pass with no mutant on (a
scenario that fails anyway proves nothing). Then, per mutant, pytest runs its scenarios with
`SYNCPEER_MUTANTS=<mutant>` in the environment, which every syncpeer node inherits (a
process, or a simulated node), and stops at the first failure: that test killed it. A
mutant whose scenarios all need real processes (not marked `sim`) is "n/a" on the
simulator. Exits 0 when every mutant was killed wherever its scenarios run, 1 when one
survived (or its run broke), 2 when a control run failed.
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
BACKENDS = ("local", "sim")

# A test fails in its body (FAILED) or in a final check at teardown (ERROR).
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass
class Outcome:
    mutant: str
    backend: str
    killed_by: str | None
    seconds: float
    returncode: int
    output: str

    @property
    def killed(self) -> bool:
        return self.returncode == 1 and self.killed_by is not None

    @property
    def not_run(self) -> bool:
        """Every scenario was skipped: they need real processes, not this backend."""
        return self.returncode == 0 and " passed" not in self.output and "skipped" in self.output


def collected(tests: list[str], backend: str) -> set[str]:
    """The test ids pytest collects from the catalog's files on `backend`."""
    files = sorted({test.split("::")[0] for test in tests})
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, "--peerlab-backend", backend, *files], cwd=ROOT, capture_output=True, text=True
    )
    return {line.strip() for line in done.stdout.splitlines() if "::" in line}


def on_backend(test: str, backend: str, ids: set[str]) -> str:
    """The catalog's test id as it runs on `backend`: as written, unless the scenario is
    marked `sim` and so runs once per backend with ids that say which (`[local]`,
    `[local-corrupt]`; with `--peerlab-backend sim` it runs once, with the plain id)."""
    if test in ids:
        return test
    name, bracket, params = test.partition("[")
    return f"{name}[{backend}-{params}" if bracket else f"{test}[{backend}]"


def pytest_run(
    tests: list[str], mutant: str | None, backend: str, results: Path, ids: set[str]
) -> Outcome:
    switches = ("SYNCPEER_MUTANTS", "SYNCPEER_BYZANTINE")
    env = {k: v for k, v in os.environ.items() if k not in switches}
    if mutant:
        env["SYNCPEER_MUTANTS"] = mutant
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(on_backend(test, backend, ids) for test in tests),
        "-x",
        "-q",
        "-rfE",
        "-p",
        "no:cacheprovider",
        "--peerlab-backend",
        backend,
        "--peerlab-shrink",
        "0",
        "--peerlab-results",
        str(results / backend / (mutant or "control")),
    ]
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    failed = FAILED.search(output)
    return Outcome(
        mutant or "control",
        backend,
        failed.group(1) if failed else None,
        time.monotonic() - began,
        done.returncode,
        output,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated mutants (default: all)")
    parser.add_argument("--backends", default="local", help="local, sim, or local,sim")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--no-control", action="store_true", help="skip the control run")
    options = parser.parse_args()
    chosen = [m.strip() for m in options.only.split(",") if m.strip()] or sorted(KILLERS)
    backends = [b.strip() for b in options.backends.split(",") if b.strip()]
    unknown = [m for m in chosen if m not in KILLERS] + [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        print(
            f"unknown: {', '.join(unknown) or 'no backend'}; mutants: {', '.join(KILLERS)}; "
            f"backends: {', '.join(BACKENDS)}"
        )
        return 2
    results = Path(tempfile.mkdtemp(prefix="peerlab-mutants-"))
    walls: dict[str, float] = {}
    outcomes: dict[str, list[Outcome]] = {}
    everything = sorted({test for m in chosen for test in KILLERS[m]})
    for backend in backends:
        began = time.monotonic()
        ids = collected(everything, backend)
        if not options.no_control:
            print(
                f"{backend}: control, {len(everything)} scenarios with no mutant on ...", flush=True
            )
            control = pytest_run(everything, None, backend, results, ids)
            if control.returncode != 0:
                print(control.output[-4000:])
                print(f"{backend}: control run failed ({control.killed_by}): fix it first")
                return 2
        with ThreadPoolExecutor(max(1, options.jobs)) as pool:
            outcomes[backend] = list(
                pool.map(
                    lambda m, b=backend, i=ids: pytest_run(KILLERS[m], m, b, results, i), chosen
                )
            )
        walls[backend] = time.monotonic() - began
    report(chosen, backends, outcomes, walls)
    survivors = [
        o for backend in backends for o in outcomes[backend] if not (o.killed or o.not_run)
    ]
    for outcome in survivors:
        print(
            f"\n--- {outcome.mutant} on {outcome.backend} (exit {outcome.returncode}) ---\n"
            f"{outcome.output[-3000:]}"
        )
    print(f"\nartifacts in {results}")
    return 1 if survivors else 0


def report(
    chosen: list[str],
    backends: list[str],
    outcomes: dict[str, list[Outcome]],
    walls: dict[str, float],
) -> None:
    width = max(len(m) for m in chosen)
    head = "".join(f"  {backend + ' result':<12}  {'seconds':>7}" for backend in backends)
    print(f"\n{'mutant':<{width}}{head}  killed by")
    for index, mutant in enumerate(chosen):
        row = [outcomes[backend][index] for backend in backends]
        cells = "".join(f"  {_verdict(o):<12}  {o.seconds:7.1f}" for o in row)
        killers = sorted({o.killed_by for o in row if o.killed_by})
        print(f"{mutant:<{width}}{cells}  {', '.join(killers) or '-'}")
    print()
    for backend in backends:
        killed = sum(o.killed for o in outcomes[backend])
        absent = sum(o.not_run for o in outcomes[backend])
        here = f" ({absent} n/a: their scenarios need real processes)" if absent else ""
        print(
            f"{backend}: {killed} of {len(chosen)} mutants killed{here} in "
            f"{walls[backend]:.0f}s (control run included)"
        )
    print()
    for mutant in chosen:
        print(f"  {mutant}: {MUTANTS[mutant]}")


def _verdict(outcome: Outcome) -> str:
    if outcome.killed:
        return "killed"
    if outcome.not_run:
        return "n/a"
    return "SURVIVED" if outcome.returncode == 0 else "ERROR"


if __name__ == "__main__":
    sys.exit(main())
