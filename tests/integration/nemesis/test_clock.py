"""Clock skew with libfaketime: the offset file, the preload environment, a real process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.nemesis import clock


def test_offset_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "skew"
    assert clock.read_skew(path) == 0.0
    clock.write_skew(path, -3600)
    assert path.read_text() == "-3600.000\n" and clock.read_skew(path) == -3600.0


def test_a_bad_library_path_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.LIBRARY_VARIABLE, "/nonexistent/libfaketime.so.1")
    with pytest.raises(UsageError, match="not a file"):
        clock.libfaketime()


def test_a_preloaded_process_follows_its_offset_file(tmp_path: Path) -> None:
    try:
        library = clock.libfaketime()
    except UsageError:
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    path = tmp_path / "skew"
    clock.write_skew(path, 3600)
    environment = clock.preload_environment(path)
    assert environment["LD_PRELOAD"] == library and "FAKETIME" not in environment
    probe = "import time, sys; print(time.time()); sys.stdout.flush()"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert abs(float(out) - time.time() - 3600) < 30
