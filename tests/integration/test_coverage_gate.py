"""`peerlab coverage-gate`: the project's total and each gated module against its threshold
from pyproject.toml; below either, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coverage import CoverageData

PYPROJECT = """
[tool.coverage.report]
fail_under = 50

[tool.peerlab.coverage.modules]
"crypto.py" = 90
"""


def gate(tmp_path: Path, covered: dict[str, list[int]]) -> subprocess.CompletedProcess[str]:
    data = CoverageData(str(tmp_path / ".coverage"))
    data.add_lines({str((tmp_path / name).resolve()): lines for name, lines in covered.items()})
    data.write()
    return subprocess.run(
        [sys.executable, "-m", "peerlab", "coverage-gate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def test_the_gate_fails_below_a_module_threshold_and_passes_above(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "crypto.py").write_text("".join(f"x{i} = {i}\n" for i in range(10)))
    (tmp_path / "other.py").write_text("a = 1\nb = 2\n")
    below = gate(tmp_path, {"crypto.py": list(range(1, 9)), "other.py": [1, 2]})
    assert below.returncode == 1, below.stdout + below.stderr
    assert "80.0%" in below.stdout and "BELOW  crypto.py" in below.stdout
    assert "83.3%" in below.stdout and "ok     project" in below.stdout
    (tmp_path / ".coverage").unlink()
    above = gate(tmp_path, {"crypto.py": list(range(1, 11)), "other.py": [1]})
    assert above.returncode == 0, above.stdout + above.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "peerlab", "coverage-gate", "--coverage", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "--coverage nope does not exist" in missing.stderr
