"""Known issues: a failure matched by test id or by signature is xfail with its link; a
known issue whose tests pass K runs in a row is reported as looking fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlab.automation.known_issues import load
from peerlab.errors import UsageError

ISSUES = """
looks_fixed_after = 2

[[issue]]
test = "test_known.py::test_by_id"
link = "https://example.invalid/issues/1"
reason = "times out on slow runners"

[[issue]]
signature = "lost write of key '[a-z]+'"
link = "https://example.invalid/issues/2"
reason = "a write lost in a partition"
"""

SUITE = """
import os

def test_by_id():
    assert os.environ.get("FIXED") == "1", "slow runner"

def test_by_signature():
    assert os.environ.get("FIXED") == "1", "lost write of key 'apple'"

def test_unknown_failure():
    assert os.environ.get("FIXED") == "1", "something else"
"""


def test_known_failures_are_xfail_with_their_link_and_fixed_ones_say_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".toml", **{"known-issues": ISSUES})
    pytester.makepyfile(test_known=SUITE)
    results = str(pytester.path / "results")
    run = pytester.runpytest("-rxX", "--peerlab-results", results)
    run.assert_outcomes(xfailed=2, failed=1)
    text = run.stdout.str()
    assert "known issue https://example.invalid/issues/1: times out on slow runners" in text
    assert "known issue https://example.invalid/issues/2: a write lost in a partition" in text
    assert "LOOKS FIXED" not in text

    monkeypatch.setenv("FIXED", "1")
    first = pytester.runpytest("--peerlab-results", results)
    first.assert_outcomes(passed=3)
    assert "LOOKS FIXED" not in first.stdout.str(), "one pass is not yet K=2 in a row"
    second = pytester.runpytest("--peerlab-results", results).stdout.str()
    assert "LOOKS FIXED https://example.invalid/issues/1 (test_known.py::test_by_id)" in second
    assert "LOOKS FIXED https://example.invalid/issues/2" in second
    assert "passed 2 runs in a row" in second


def test_a_bad_known_issues_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "known-issues.toml"
    path.write_text('[[issue]]\ntest = "t.py::x"\nreason = "r"\n')
    with pytest.raises(UsageError, match=r"field 'issue\[0\]\.link' field required"):
        load(path)
    path.write_text('[[issue]]\nlink = "l"\nreason = "r"\n')
    with pytest.raises(UsageError, match="names neither a test nor a signature"):
        load(path)
    path.write_text('[[issue]]\nsignature = "("\nlink = "l"\nreason = "r"\n')
    with pytest.raises(UsageError, match="not a regular expression"):
        load(path)
    assert load(tmp_path / "absent.toml").issues == ()
    with pytest.raises(UsageError, match="does not exist"):
        load(tmp_path / "absent.toml", required=True)
