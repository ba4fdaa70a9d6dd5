"""Coverage gates: the project's total against coverage.py's `fail_under`, and the modules
named in `[tool.peerlab.coverage.modules]` of pyproject.toml against their own thresholds
(syncpeer's identity, envelope and keyring modules: 90%). `peerlab coverage-gate` fails
when any is below."""

from __future__ import annotations

import io
import tomllib
from dataclasses import dataclass
from pathlib import Path

from peerlab.errors import UsageError


@dataclass(frozen=True)
class Gate:
    what: str  # "project" or a module's path
    percent: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.percent >= self.threshold


def module_thresholds(pyproject: Path) -> dict[str, float]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    modules = data.get("tool", {}).get("peerlab", {}).get("coverage", {}).get("modules", {})
    for path, threshold in modules.items():
        if not isinstance(threshold, int | float) or not 0 <= threshold <= 100:
            raise UsageError(
                f"{pyproject}: [tool.peerlab.coverage.modules] {path!r} = {threshold!r}",
                field=f"tool.peerlab.coverage.modules.{path}",
                hint="a percentage from 0 to 100",
            )
    return {path: float(threshold) for path, threshold in modules.items()}


def check(coverage_file: Path, pyproject: Path) -> list[Gate]:
    from coverage import Coverage
    from coverage.exceptions import NoDataError

    if not coverage_file.exists():
        raise UsageError(
            f"--coverage {coverage_file} does not exist",
            field="--coverage",
            hint="run the suite under coverage first (`make coverage`)",
        )
    cov = Coverage(data_file=str(coverage_file), config_file=str(pyproject))
    cov.load()
    quiet = io.StringIO()
    fail_under = cov.get_option("report:fail_under")
    threshold = float(fail_under) if isinstance(fail_under, int | float) else 0.0
    gates = [Gate("project", cov.report(file=quiet), threshold)]
    for path, threshold in module_thresholds(pyproject).items():
        try:
            percent = cov.report(include=[str(Path(path).resolve())], file=quiet)
        except NoDataError:
            percent = 0.0  # never imported: nothing of it is covered
        gates.append(Gate(path, percent, threshold))
    return gates
