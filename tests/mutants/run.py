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
process, or a simulated node), and stops at the first failure: that test killed it. Exits 0
when every mutant was killed on every backend, 1 when one survived (or its run broke), 2
when a control run failed.
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


def on_backend(test: str, backend: str) -> str:
    """The catalog's test id as it runs on `backend`. The scenarios are marked `sim`: with
    the default backend they run once per backend, and their ids say which (`[local]`,
    `[local-corrupt]`); with `--peerlab-backend sim` they run once, with the plain id."""
    if backend == "sim":
        return test
    name, bracket, params = test.partition("[")
    return f"{name}[{backend}-{params}" if bracket else f"{test}[{backend}]"


def pytest_run(tests: list[str], mutant: str | None, backend: str, results: Path) -> Outcome:
    switches = ("SYNCPEER_MUTANTS", "SYNCPEER_BYZANTINE")
    env = {k: v for k, v in os.environ.items() if k not in switches}
    if mutant:
        env["SYNCPEER_MUTANTS"] = mutant
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(on_backend(test, backend) for test in tests),
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
    for backend in backends:
        began = time.monotonic()
        if not options.no_control:
            everything = sorted({test for m in chosen for test in KILLERS[m]})
            print(
                f"{backend}: control, {len(everything)} scenarios with no mutant on ...", flush=True
            )
            control = pytest_run(everything, None, backend, results)
            if control.returncode != 0:
                print(control.output[-4000:])
                print(f"{backend}: control run failed ({control.killed_by}): fix it first")
                return 2
        with ThreadPoolExecutor(max(1, options.jobs)) as pool:
            outcomes[backend] = list(
                pool.map(lambda m, b=backend: pytest_run(KILLERS[m], m, b, results), chosen)
            )
        walls[backend] = time.monotonic() - began
    report(chosen, backends, outcomes, walls)
    survivors = [o for backend in backends for o in outcomes[backend] if not o.killed]
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
        cells = "".join(
            f"  {'killed' if o.killed else ('SURVIVED' if o.returncode == 0 else 'ERROR'):<12}"
            f"  {o.seconds:7.1f}"
            for o in row
        )
        killers = sorted({o.killed_by for o in row if o.killed_by})
        print(f"{mutant:<{width}}{cells}  {', '.join(killers) or '-'}")
    print()
    for backend in backends:
        killed = sum(o.killed for o in outcomes[backend])
        print(
            f"{backend}: {killed} of {len(chosen)} mutants killed in {walls[backend]:.0f}s "
            "(control run included)"
        )
    print()
    for mutant in chosen:
        print(f"  {mutant}: {MUTANTS[mutant]}")


if __name__ == "__main__":
    sys.exit(main())
