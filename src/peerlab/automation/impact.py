"""Change-impact selection: which tests the change since a git revision can affect.

The map comes from a full run under coverage.py: the pytest plugin records each test's
lines under its test id (a coverage context), and `build_map` turns the data file into

    {"format": 1, "commit": ..., "tests": [every test id],
     "files": {path: {"blob": git blob of the file measured,
                      "lines": {line: [test ids]}, "import": [lines run at import],
                      "untested": [lines that ran only where no test ran]}}}

kept with the results (`peerlab-results/impact-map.json`). `impacted` reads the diff from
REV to the work tree and selects:

- tests whose covered lines changed (an insertion counts the lines around it);
- every test that ran a file's code when a changed line ran at import time (a `def`, a
  constant): what it changes reaches whoever uses the module;
- the tests of a changed test file, and every test under a changed conftest.py;
- everything, with the reason, when the map is missing, when a changed file is not the
  version the map measured (the map is stale), when a changed line ran only in processes
  where no test was running (a node's, a CLI's: the map cannot tell which test made them
  run it), or when a file that is not Python (a manifest, pyproject.toml, a template)
  changed. Docs (*.md) change nothing.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerlab.errors import UsageError

FORMAT = 1
DEFAULT_MAP = Path("peerlab-results") / "impact-map.json"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.MULTILINE)
_NOTHING = (".md", ".rst", ".txt")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(
            f"--since: git {' '.join(args)} failed in {root}: {said}",
            field="--since",
            hint="name a revision of this repository (e.g. main or HEAD~1), from inside it",
        )
    return done.stdout


def repo_root(start: Path) -> Path:
    return Path(git(start, "rev-parse", "--show-toplevel").strip())


def module_level_lines(source: str) -> set[int]:
    """Lines Python runs when it imports the module: statements outside function bodies,
    and each function's header (decorators, signature, defaults)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[int] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                found.update(range(start, node.body[0].lineno))
                continue
            bodies = [
                getattr(node, name)
                for name in ("body", "orelse", "finalbody", "handlers")
                if isinstance(getattr(node, name, None), list)
            ]
            if not bodies:
                found.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
                continue
            found.add(node.lineno)
            for body in bodies:
                visit([item for item in body if isinstance(item, ast.stmt)])
                for handler in body:
                    if isinstance(handler, ast.ExceptHandler):
                        found.add(handler.lineno)
                        visit(handler.body)

    visit(tree.body)
    return found


def build_map(coverage_file: Path, root: Path) -> dict[str, Any]:
    """The map from a coverage data file whose contexts are test ids."""
    from coverage import CoverageData

    if not coverage_file.exists():
        raise UsageError(
            f"--coverage {coverage_file} does not exist",
            field="--coverage",
            hint="run `make coverage` (coverage run -m pytest, then coverage combine) first",
        )
    data = CoverageData(str(coverage_file))
    data.read()
    tests: set[str] = set()
    files: dict[str, Any] = {}
    for measured in sorted(data.measured_files()):
        path = Path(measured)
        if not path.is_relative_to(root) or not path.exists():
            continue
        relative = path.relative_to(root).as_posix()
        lines: dict[str, list[str]] = {}
        untested: list[int] = []  # ran, but only where no test was running (a node, a CLI)
        at_import = module_level_lines(path.read_text(encoding="utf-8", errors="replace"))
        for line, contexts in sorted(data.contexts_by_lineno(measured).items()):
            named = sorted(c for c in contexts if c)
            tests.update(named)
            if named:
                lines[str(line)] = named
            elif line not in at_import:
                untested.append(line)
        blob = git(root, "hash-object", "--", relative).strip()
        files[relative] = {
            "blob": blob,
            "lines": lines,
            "import": sorted(at_import),
            "untested": untested,
        }
    if not tests:
        raise UsageError(
            f"{coverage_file} has no per-test contexts",
            field="--coverage",
            hint="run pytest with the peerlab plugin under coverage: it names each test's lines",
        )
    commit = git(root, "rev-parse", "HEAD").strip()
    return {"format": FORMAT, "commit": commit, "tests": sorted(tests), "files": files}


@dataclass
class Impact:
    """What a change selects: `everything` (with why), else test ids and test paths."""

    everything: bool = False
    reasons: list[str] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)  # test files or folders to run whole

    def select(self, nodeid: str) -> bool:
        if self.everything or nodeid in self.tests:
            return True
        return any(nodeid == p or nodeid.startswith((f"{p}::", f"{p}/")) for p in self.paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "everything": self.everything,
            "reasons": self.reasons,
            "tests": sorted(self.tests),
            "paths": sorted(self.paths),
        }


def changed_lines(root: Path, rev: str) -> dict[str, set[int] | None]:
    """Per file changed since `rev` (work tree included): the lines of its `rev` version
    that changed (an insertion: the lines around it), or None for a file `rev` lacks."""
    changes: dict[str, set[int] | None] = {}
    names = git(root, "diff", "--name-status", "--no-renames", rev, "--").splitlines()
    for row in names:
        status, _, path = row.partition("\t")
        changes[path] = None if status.startswith("A") else set()
    for path in git(root, "ls-files", "--others", "--exclude-standard").splitlines():
        changes[path] = None
    for path, lines in changes.items():
        if lines is None or not path.endswith(".py"):
            continue
        diff = git(root, "diff", "-U0", "--no-renames", rev, "--", path)
        for match in _HUNK.finditer(diff):
            start, count = int(match.group(1)), int(match.group(2) or 1)
            if count == 0:
                lines.update((start, start + 1))  # inserted after line `start`
            else:
                lines.update(range(start, start + count))
    return changes


def impacted(root: Path, rev: str, impact_map: dict[str, Any] | None) -> Impact:
    impact = Impact()
    if impact_map is None:
        impact.everything = True
        impact.reasons.append("there is no impact map: run `make coverage` on a full run")
        return impact
    if impact_map.get("format") != FORMAT:
        impact.everything = True
        impact.reasons.append("the impact map is of another format: build it again")
        return impact
    files: dict[str, Any] = impact_map["files"]
    tests: list[str] = impact_map["tests"]
    test_files = {test.split("::")[0] for test in tests}
    for path, lines in sorted(changed_lines(root, rev).items()):
        name = Path(path).name
        if name == "conftest.py":
            folder = str(Path(path).parent)
            impact.paths.add("" if folder == "." else folder)
            if folder == ".":
                impact.everything = True
                impact.reasons.append(f"{path} changed: it configures every test")
        elif path in test_files or (name.startswith("test_") and path.endswith(".py")):
            impact.paths.add(path)
        elif path in files:
            _covered(impact, root, rev, path, lines, files[path])
        elif path.endswith(".py") or path.endswith(_NOTHING) or path.startswith("docs/"):
            continue  # Python that no test ran, or prose
        else:
            impact.everything = True
            impact.reasons.append(f"{path} changed and is not Python code the map covers")
    impact.paths.discard("")
    return impact


def _covered(
    impact: Impact, root: Path, rev: str, path: str, lines: set[int] | None, entry: dict[str, Any]
) -> None:
    then = _blob_at(root, rev, path)
    if lines is None or then != entry["blob"]:
        impact.everything = True
        impact.reasons.append(
            f"the impact map is stale for {path}: it measured another version than {rev}'s"
        )
        return
    by_line: dict[str, list[str]] = entry["lines"]
    if lines & set(entry["import"]):
        for covering in by_line.values():
            impact.tests.update(covering)
        return
    outside = sorted(lines & set(entry.get("untested", ())))
    if outside:
        impact.everything = True
        impact.reasons.append(
            f"{path} line {outside[0]} changed and ran only outside the tests' own processes "
            "(in a node or a CLI), which the map cannot tie to tests"
        )
        return
    for line in lines:
        impact.tests.update(by_line.get(str(line), ()))


def _blob_at(root: Path, rev: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", f"{rev}:{path}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def load_map(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return {"format": None}
    return data if isinstance(data, dict) else {"format": None}


def write_map(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    return path
