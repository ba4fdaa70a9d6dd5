"""Results and reports: the results folder of a run, JUnit XML, and the HTML report.

write_results(env, Path("peerlab-results/my-run"))   # result.json, logs, timeline, junit
write_report(Path("peerlab-results/my-run"))         # report.html, self-contained
"""

from __future__ import annotations

from pathlib import Path

from peerlab.report.results import write_results
from peerlab.report.runs import find_run, load_result

__all__ = ["find_run", "load_result", "write_report", "write_results"]


def write_report(path: Path, out: Path | None = None) -> Path:
    """Render report.html for the results folder `path` (matplotlib loads only now)."""
    from peerlab.report.html import write_report as write

    return write(path, out)
