"""Change-impact selection on a real map: the project cloned at HEAD, a few real tests run
under coverage.py (the envelope tests and etcd tests), one line of
src/syncpeer/core/envelope.py changed; and the rules on a small repository of our own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peerlab.automation.impact import impacted, module_level_lines
from peerlab.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE_TESTS = "tests/unit/syncpeer/test_syncpeer_envelope.py"
ETCD_TESTS = [
    "tests/unit/systems/test_adapter_parsing.py::test_prefix_end_covers_exactly_the_prefix",
    "tests/unit/systems/test_adapter_parsing.py::test_member_status_knows_the_leader",
]


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def commit(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git repository")
def test_a_one_line_change_in_envelope_selects_the_envelope_tests_not_the_etcd_ones(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", "--shared", str(ROOT), str(clone))
    # Not measured by a coverage run around this test (`make coverage`): the clone's
    # packages have the project's names and would count as the project's code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env.update({"PYTHONPATH": str(clone / "src"), "NO_COLOR": "1", "COLUMNS": "200"})
    python = [sys.executable, "-m"]
    run(
        clone,
        *python,
        "coverage",
        "run",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--peerlab-trends",
        "off",
        ENVELOPE_TESTS,
        *ETCD_TESTS,
        env=env,
    )
    run(clone, *python, "coverage", "combine", "-q", env=env)
    run(clone, *python, "peerlab", "impact-map", env=env)
    built = json.loads((clone / "peerlab-results" / "impact-map.json").read_text())
    assert set(ETCD_TESTS) <= set(built["tests"]), "the etcd tests are in the map"

    # One line inside a function the envelope tests run (not a line run at import).
    envelope = built["files"]["src/syncpeer/core/envelope.py"]
    line = min(int(n) for n in envelope["lines"] if int(n) not in envelope["import"])
    path = clone / "src/syncpeer/core/envelope.py"
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].rstrip("\n") + "  # changed\n"
    path.write_text("".join(lines))
    commit(clone, "one line")

    found = json.loads(
        run(clone, *python, "peerlab", "impacted", "--since", "HEAD~1", "--json", env=env)
    )
    assert not found["everything"], found["reasons"]
    assert found["tests"], "the envelope tests cover that line"
    assert all(test.startswith(ENVELOPE_TESTS + "::") for test in found["tests"]), found
    assert not set(found["tests"]) & set(ETCD_TESTS)

    # And pytest runs just those.
    chosen = run(
        clone,
        *python,
        "pytest",
        "-p",
        "no:cacheprovider",
        "--collect-only",
        "-q",
        "--peerlab-impacted",
        "HEAD~1",
        ENVELOPE_TESTS,
        *ETCD_TESTS,
        env=env,
    )
    assert "affected by the change since HEAD~1" in chosen
    collected = [line for line in chosen.splitlines() if "::" in line]
    assert sorted(collected) == sorted(found["tests"]), chosen


def small_repo(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A repository with a module, its test, a conftest and a doc, and a map of it."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "src/mod.py").write_text(
        "X = 1\n\n\ndef f():\n    return X\n\n\ndef g():\n    return 2\n    # in a node\n"
    )
    (repo / "tests/test_mod.py").write_text("def test_f(): ...\n\ndef test_g(): ...\n")
    (repo / "tests/conftest.py").write_text("")
    (repo / "README.md").write_text("hello\n")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    run(repo, "git", "init", "-q")
    commit(repo, "start")
    blob = run(repo, "git", "rev-parse", "HEAD:src/mod.py").strip()
    tests = ["tests/test_mod.py::test_f", "tests/test_mod.py::test_g", "tests/test_other.py::t"]
    mapped = {
        "format": 1,
        "commit": "x",
        "tests": tests,
        "files": {
            "src/mod.py": {
                "blob": blob,
                "lines": {"5": [tests[0]], "9": [tests[1], tests[2]]},
                "import": sorted(module_level_lines((repo / "src/mod.py").read_text())),
                "untested": [10],
            }
        },
    }
    return repo, mapped


def edit(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    file.write_text(file.read_text().replace(old, new))


def test_import_time_lines_are_found_by_parsing() -> None:
    source = (
        "import os\nX = [\n    1,\n]\n\n@dec\ndef f(\n    a=1,\n):\n    return a\n\n"
        "class C:\n    y = 2\n\n    def m(self):\n        return 3\n"
        "try:\n    import z\nexcept ImportError:\n    z = None\n"
    )
    assert module_level_lines(source) == {1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 15, 17, 18, 19, 20}


def test_the_selection_rules(tmp_path: Path) -> None:
    repo, mapped = small_repo(tmp_path)
    edit(repo, "src/mod.py", "return 2", "return 3")
    found = impacted(repo, "HEAD", mapped)
    assert not found.everything and found.tests == {mapped["tests"][1], mapped["tests"][2]}
    edit(repo, "src/mod.py", "X = 1", "X = 5")  # run at import: every test of the module
    assert impacted(repo, "HEAD", mapped).tests == set(mapped["tests"])
    run(repo, "git", "checkout", "-q", "--", ".")
    edit(repo, "src/mod.py", "# in a node", "# in a node, changed")
    outside = impacted(repo, "HEAD", mapped)
    assert outside.everything and "line 10 changed and ran only outside" in outside.reasons[0]
    run(repo, "git", "checkout", "-q", "--", ".")
    edit(repo, "README.md", "hello", "bye")
    assert impacted(repo, "HEAD", mapped).to_json()["tests"] == []
    edit(repo, "tests/test_mod.py", "test_g", "test_h")
    assert impacted(repo, "HEAD", mapped).paths == {"tests/test_mod.py"}
    edit(repo, "tests/conftest.py", "", "import os\n")
    assert "tests" in impacted(repo, "HEAD", mapped).paths
    run(repo, "git", "checkout", "-q", "--", ".")

    edit(repo, "pyproject.toml", "x", "y")
    everything = impacted(repo, "HEAD", mapped)
    assert everything.everything and "pyproject.toml changed" in everything.reasons[0]
    run(repo, "git", "checkout", "-q", "--", ".")
    missing = impacted(repo, "HEAD", None)
    assert missing.everything and "no impact map" in missing.reasons[0]
    edit(repo, "src/mod.py", "return 2", "return 3")
    commit(repo, "moved on")  # the map measured HEAD~1's mod.py, not HEAD's
    edit(repo, "src/mod.py", "return X", "return X + 1")
    stale = impacted(repo, "HEAD", mapped)
    assert stale.everything and "stale for src/mod.py" in stale.reasons[0]
    assert not impacted(repo, "HEAD~1", mapped).everything, "from the measured version: fine"
    with pytest.raises(UsageError, match="--since: git diff"):
        impacted(repo, "no-such-revision", mapped)
