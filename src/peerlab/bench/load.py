"""Busy processes that load the machine, for benchmarks and `make test-under-load`.

Each is a Python process spinning on the CPU. They die with whoever started them: killed
on leaving the `busy` block (also on an exception or Ctrl-C), and, through
PR_SET_PDEATHSIG, when the starter itself is SIGKILLed.

    python -m peerlab.bench.load 4 -- make test     # runs the command with 4 busy processes
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

# The child asks for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG = 1) itself: a
# preexec_fn is unsafe in a parent that runs threads, as an Environment does.
SPIN = "import ctypes, signal\nctypes.CDLL(None).prctl(1, signal.SIGKILL)\nwhile True:\n    pass\n"


@contextlib.contextmanager
def busy(processes: int) -> Iterator[list[int]]:
    """`processes` busy processes for the duration of the block; yields their pids."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(processes):
            started.append(
                subprocess.Popen(
                    [sys.executable, "-c", SPIN],
                    stdin=subprocess.DEVNULL,
                )
            )
        yield [process.pid for process in started]
    finally:
        for process in started:
            process.kill()
        for process in started:
            process.wait()


def main(argv: list[str]) -> int:
    """`N -- command ...`: run the command with N busy processes; its exit status."""
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: python -m peerlab.bench.load N -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with busy(int(argv[0])) as pids:
        print(
            f"load: {len(pids)} busy processes ({os.cpu_count()} cores)",
            file=sys.stderr,
            flush=True,
        )
        return subprocess.call(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
