"""Clock skew per node, with libfaketime (Debian: `apt-get install faketime`).

A node that may be skewed runs with `LD_PRELOAD=libfaketime.so.1` and
`FAKETIME_TIMESTAMP_FILE` naming a file of its own that holds its offset (`+3600`, `-1800`).
libfaketime re-reads that file at most once a second (`FAKETIME_CACHE_DURATION=1`), so
writing it changes a running node's clock within a second; re-reading on every call
(`FAKETIME_NO_CACHE`) costs about 60 µs per `time.time()`, too much for a busy node.

Only the wall clock moves. `FAKETIME_DONT_FAKE_MONOTONIC=1` keeps monotonic clocks real, so
the node's timers, timeouts and event loop are unaffected when the offset changes: a
monotonic clock that jumped back an hour would stall every timer for that hour. (With it,
libfaketime 0.9.10 makes `time.sleep` fail with EINVAL; asyncio programs never call it.)
The FAKETIME variable itself must stay unset: it would take precedence over the file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import psutil

from peerlab.errors import UsageError

LIBRARY_VARIABLE = "PEERLAB_LIBFAKETIME"  # overrides where the library is looked for
_CANDIDATES = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
)


def libfaketime() -> str:
    """The path of libfaketime.so.1; UsageError with the install command when it is missing."""
    explicit = os.environ.get(LIBRARY_VARIABLE)
    if explicit:
        if not Path(explicit).is_file():
            raise UsageError(
                f"{LIBRARY_VARIABLE} is {explicit!r}, which is not a file",
                field=LIBRARY_VARIABLE,
                hint="point it at libfaketime.so.1, or unset it to search the usual places",
            )
        return explicit
    for pattern in _CANDIDATES:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    found_by_dpkg = _from_dpkg()
    if found_by_dpkg:
        return found_by_dpkg
    raise UsageError(
        "clock skew needs libfaketime, which is not installed",
        field="clock_skew",
        hint="apt-get install faketime (Debian/Ubuntu), or set "
        f"{LIBRARY_VARIABLE} to the path of libfaketime.so.1",
    )


def _from_dpkg() -> str | None:
    if shutil.which("dpkg") is None:
        return None
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "libfaketime"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return next((line for line in listing.splitlines() if line.endswith("/libfaketime.so.1")), None)


def preload_environment(skew_file: Path, library: str | None = None) -> dict[str, str]:
    """The environment variables that run a process on the offset held in `skew_file`
    (with the libfaketime at `library`: a container's own; default: this machine's)."""
    return {
        "LD_PRELOAD": library or libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": str(skew_file),
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


SHARED_MEMORY = Path("/dev/shm")
# What libfaketime makes for each process it starts in (named by that process's pid) and
# removes when the process exits cleanly; a killed one leaves them behind.
_SEGMENT = re.compile(r"(?:sem\.)?faketime_(?:sem|shm)_(\d+)")


def sweep_stale_segments(folder: Path = SHARED_MEMORY) -> int:
    """Remove this user's libfaketime segments whose process is gone; returns how many.

    libfaketime 0.9.10 creates `/dev/shm/faketime_shm_<pid>` and `sem.faketime_sem_<pid>`
    in every process it starts in and removes them at a clean exit, so every SIGKILLed
    skewed node leaves a pair. A later process that gets the same pid then cannot start at
    all ("In ft_shm_create(), shm_open failed: File exists", exit 1): after a few hundred
    kills, a few percent of skewed starts. So they are swept before each skewed start."""
    removed = 0
    uid = os.getuid()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _SEGMENT.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        if psutil.pid_exists(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def write_skew(path: Path, seconds: float) -> None:
    """Set the offset a skewed process reads (atomically: it may be reading right now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{seconds:+.3f}\n")
    temporary.replace(path)


def read_skew(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0
