"""The Go example (examples/go/) drives a network through the control API with Go's standard
library only: up, partition, check, heal, down. Needs Debian's golang-go (.ci/run installs it)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[3] / "examples" / "go"


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go: apt-get install golang-go")
def test_the_go_example_passes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PEERLAB": str(Path(sys.executable).with_name("peerlab")),
        "PEERLAB_HOME": str(tmp_path / "home"),
        "GOPROXY": "off",  # the standard library only: nothing to download
        "GOFLAGS": "-count=1",
        "GOCACHE": os.environ.get("GOCACHE", str(Path.home() / ".cache" / "go-build")),
    }
    result = subprocess.run(
        ["go", "test", "-v", "./..."],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "--- PASS: TestPartitionThenHeal" in result.stdout
    assert "--- PASS: TestErrorsHaveOneShape" in result.stdout
